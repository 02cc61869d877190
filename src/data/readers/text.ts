// Folders of text files: each file is one document, its id the path relative to the folder (or the file
// name for a single file). Files are visited in sorted order so every run sees the same sequence.
// A file that is not valid UTF-8 is reported and kept with U+FFFD (or skipped, if asked).
import { lstatSync, readdirSync, readFileSync, readlinkSync, realpathSync, statSync } from "node:fs";
import { isAbsolute, join, relative, sep } from "node:path";
import type { Document } from "../document.js";
import type { IssueSink } from "../issues.js";

export interface TextReadOptions {
  invalidUtf8?: "replace" | "skip";
  onIssue?: IssueSink;
  /** Root the ids are relative to (default: the folder, or the file's folder). */
  root?: string;
}

const strict = new TextDecoder("utf-8", { fatal: true });
const lenient = new TextDecoder("utf-8");

/**
 * Every regular file under `dir`, recursively, sorted by path; dot-files and dot-folders are skipped.
 * Links are followed, except a link to a folder already listed or to one holding the current folder (a
 * link to `.` or `..`), which would list files twice or walk a cycle.
 */
export function listFiles(dir: string): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  const holds = (outer: string, inner: string) => {
    const r = relative(outer, inner);
    return r === "" || (r !== ".." && !r.startsWith(`..${sep}`) && !isAbsolute(r));
  };
  const walk = (d: string, real: string) => {
    seen.add(real);
    const names = readdirSync(d).sort();
    for (const n of names) {
      if (n.startsWith(".")) continue;
      const p = join(d, n);
      const st = statOrBrokenLink(p);
      if (st.isDirectory()) {
        const target = realpathSync(p);
        if (!seen.has(target) && !holds(target, real)) walk(p, target);
      } else if (st.isFile()) out.push(p);
    }
  };
  walk(dir, realpathSync(dir));
  return out;
}

/** statSync, with a dangling link named as one (not a bare ENOENT on a file that is listed). */
function statOrBrokenLink(p: string) {
  try {
    return statSync(p);
  } catch (e) {
    if (
      (e as NodeJS.ErrnoException).code !== "ENOENT" ||
      !lstatSync(p, { throwIfNoEntry: false })?.isSymbolicLink()
    )
      throw e;
    throw new Error(`${p}: a link to '${readlinkSync(p)}', which does not exist (remove or fix the link)`);
  }
}

/** One document from one text file. */
export function readTextFile(path: string, opts: TextReadOptions = {}): Document | null {
  const bytes = readFileSync(path);
  let text: string;
  try {
    text = strict.decode(bytes);
  } catch {
    const keep = opts.invalidUtf8 !== "skip";
    opts.onIssue?.({
      file: path,
      kind: "utf8",
      message: "file is not valid UTF-8",
      action: keep ? "kept" : "skipped",
    });
    if (!keep) return null;
    text = lenient.decode(bytes);
  }
  const id = opts.root ? relative(opts.root, path) : path;
  return { id, text, meta: { source: path } };
}

export async function* readTextFiles(path: string, opts: TextReadOptions = {}): AsyncGenerator<Document> {
  const st = statSync(path);
  const files = st.isDirectory() ? listFiles(path) : [path];
  const root = opts.root ?? (st.isDirectory() ? path : undefined);
  for (const f of files) {
    const d = readTextFile(f, { ...opts, root });
    if (d) yield d;
  }
}
