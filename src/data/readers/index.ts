// Readers by format, and input expansion: a list of paths (files or folders) becomes a sorted list of
// input files, each with its format (from the extension; files in a folder with no known extension are
// text documents). The pipeline splits this list across tasks.
import { statSync } from "node:fs";
import type { Document } from "../document.js";
import type { IssueSink } from "../issues.js";
import { readJsonl } from "./jsonl.js";
import { readParquet } from "./parquet.js";
import { listFiles, readTextFiles } from "./text.js";
import { readWarc } from "./warc.js";

export type InputFormat = "jsonl" | "parquet" | "warc" | "text";
export const INPUT_FORMATS: readonly (InputFormat | "auto")[] = ["auto", "jsonl", "parquet", "warc", "text"];

export interface InputFile {
  path: string;
  format: InputFormat;
  /** Folder the path was found in (text documents take ids relative to it). */
  root?: string;
}

export interface ReadOptions {
  textField?: string;
  idField?: string;
  urlField?: string;
  invalidUtf8?: "replace" | "skip";
  onIssue?: IssueSink;
}

export function formatOf(path: string): InputFormat | null {
  const p = path.toLowerCase().replace(/\.(gz|zst|zstd)$/, "");
  if (/\.(jsonl|ndjson|json)$/.test(p)) return "jsonl";
  if (p.endsWith(".parquet")) return "parquet";
  if (/\.(warc|wet|arc)$/.test(p)) return "warc";
  if (/\.(wat)$/.test(p)) return null; // metadata only: no text
  return null;
}

/** Expands paths to input files; `format` other than "auto" applies to every file. */
export function expandInputs(paths: string[], format: InputFormat | "auto" = "auto"): InputFile[] {
  const out: InputFile[] = [];
  for (const p of paths) {
    const st = statSync(p);
    if (st.isDirectory()) {
      for (const f of listFiles(p)) {
        const fmt = format === "auto" ? (formatOf(f) ?? "text") : format;
        if (format === "auto" && /\.wat(\.gz)?$/i.test(f)) continue;
        out.push({ path: f, format: fmt, root: p });
      }
    } else {
      const fmt = format === "auto" ? formatOf(p) : format;
      if (!fmt) throw new Error(`input ${p}: unknown format (say format: jsonl|parquet|warc|text)`);
      out.push({ path: p, format: fmt });
    }
  }
  return out;
}

/** Documents of one input file. */
export function readInput(input: InputFile, opts: ReadOptions = {}): AsyncGenerator<Document> {
  switch (input.format) {
    case "jsonl":
      return readJsonl(input.path, opts);
    case "parquet":
      return readParquet(input.path, opts);
    case "warc":
      return readWarc(input.path, opts);
    case "text":
      return readTextFiles(input.path, { ...opts, root: input.root });
  }
}

/** Documents of several inputs, in order. */
export async function* readInputs(inputs: InputFile[], opts: ReadOptions = {}): AsyncGenerator<Document> {
  for (const i of inputs) yield* readInput(i, opts);
}
