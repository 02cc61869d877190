// Readers for the public evaluation sets in their own file formats (nothing is fetched): MMLU's CSV
// (question, four choices, answer; with or without a header row, answer as 0–3 or A–D), ARC's JSONL
// (AI2's `question.stem` + `choices[{text,label}]`, or the HF datasets layout), GSM8K's JSONL (question,
// answer ending "#### N") and MGSM's TSV (question, tab, answer number). A bad row is an error naming
// the file, the line and the field.
import { readRegularFile } from "../io/regular.js";

export interface MmluDoc {
  question: string;
  choices: string[];
  /** 0–3. */
  answer: number;
}

export interface ArcDoc {
  id: string;
  question: string;
  choices: { text: string[]; label: string[] };
  answerKey: string;
}

export interface Gsm8kDoc {
  question: string;
  answer: string;
}

export interface MgsmDoc {
  question: string;
  answerNumber: string;
}

function readText(path: string): string {
  return new TextDecoder("utf-8", { fatal: true }).decode(readRegularFile(path, 1 << 30));
}

/** RFC 4180 CSV: fields in double quotes may hold commas, newlines and doubled quotes. */
export function parseCsv(text: string, path: string): { line: number; fields: string[] }[] {
  const rows: { line: number; fields: string[] }[] = [];
  let fields: string[] = [];
  let field = "";
  let quoted = false;
  let line = 1;
  let start = 1;
  let i = 0;
  const end = () => {
    fields.push(field);
    field = "";
  };
  while (i < text.length) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i += 2;
        continue;
      }
      if (c === '"') quoted = false;
      else {
        if (c === "\n") line++;
        field += c;
      }
      i++;
      continue;
    }
    if (c === '"' && field === "") quoted = true;
    else if (c === ",") end();
    else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      end();
      if (!(fields.length === 1 && fields[0] === "")) rows.push({ line: start, fields });
      fields = [];
      line++;
      start = line;
    } else field += c;
    i++;
  }
  if (quoted) throw new Error(`${path}:${start}: a quoted field is not closed`);
  if (field !== "" || fields.length > 0) {
    end();
    rows.push({ line: start, fields });
  }
  return rows;
}

export function readMmluCsv(path: string): MmluDoc[] {
  const rows = parseCsv(readText(path), path);
  if (rows[0]?.fields[0] === "question") rows.shift();
  return rows.map(({ line, fields }) => {
    if (fields.length !== 6)
      throw new Error(`${path}:${line}: ${fields.length} fields, expected 6 (question, 4 choices, answer)`);
    const a = fields[5]!.trim();
    const answer = /^[0-3]$/.test(a) ? Number(a) : "ABCD".indexOf(a);
    if (a.length !== 1 || answer < 0)
      throw new Error(`${path}:${line}: field 'answer' must be 0–3 or A–D, got '${a}'`);
    return { question: fields[0]!, choices: fields.slice(1, 5), answer };
  });
}

function jsonl(path: string): { line: number; value: Record<string, unknown> }[] {
  const out: { line: number; value: Record<string, unknown> }[] = [];
  readText(path)
    .split("\n")
    .forEach((s, i) => {
      if (s.trim() === "") return;
      let v: unknown;
      try {
        v = JSON.parse(s);
      } catch (e) {
        throw new Error(`${path}:${i + 1}: not JSON (${(e as Error).message})`);
      }
      if (typeof v !== "object" || v === null || Array.isArray(v))
        throw new Error(`${path}:${i + 1}: expected a JSON object`);
      out.push({ line: i + 1, value: v as Record<string, unknown> });
    });
  return out;
}

function str(v: unknown, path: string, line: number, field: string): string {
  if (typeof v !== "string") throw new Error(`${path}:${line}: field '${field}' must be a string`);
  return v;
}

export function readArcJsonl(path: string): ArcDoc[] {
  return jsonl(path).map(({ line, value: v }) => {
    const q = v.question;
    // AI2's layout: question {stem, choices [{text, label}]}; HF's: question string, choices {text, label}.
    const nested = typeof q === "object" && q !== null;
    const question = nested
      ? str((q as Record<string, unknown>).stem, path, line, "question.stem")
      : str(q, path, line, "question");
    const raw = nested ? (q as Record<string, unknown>).choices : v.choices;
    let text: string[];
    let label: string[];
    if (Array.isArray(raw)) {
      text = raw.map((c, i) => str(c?.text, path, line, `question.choices[${i}].text`));
      label = raw.map((c, i) => str(c?.label, path, line, `question.choices[${i}].label`));
    } else if (raw && typeof raw === "object" && Array.isArray((raw as { text: unknown }).text)) {
      const r = raw as { text: unknown[]; label: unknown[] };
      text = r.text.map((t, i) => str(t, path, line, `choices.text[${i}]`));
      label = (r.label ?? []).map((t, i) => str(t, path, line, `choices.label[${i}]`));
    } else throw new Error(`${path}:${line}: field 'choices' is missing`);
    const answerKey = str(v.answerKey, path, line, "answerKey");
    if (text.length < 2 || text.length !== label.length)
      throw new Error(`${path}:${line}: field 'choices' needs ≥ 2 texts, each with a label`);
    if (!label.includes(answerKey))
      throw new Error(`${path}:${line}: field 'answerKey' '${answerKey}' is not a choice label`);
    return {
      id: typeof v.id === "string" ? v.id : String(line),
      question,
      choices: { text, label },
      answerKey,
    };
  });
}

export function readGsm8kJsonl(path: string): Gsm8kDoc[] {
  return jsonl(path).map(({ line, value: v }) => {
    const answer = str(v.answer, path, line, "answer");
    if (!answer.includes("####")) throw new Error(`${path}:${line}: field 'answer' has no '#### N' line`);
    return { question: str(v.question, path, line, "question"), answer };
  });
}

export function readMgsmTsv(path: string): MgsmDoc[] {
  const out: MgsmDoc[] = [];
  readText(path)
    .split("\n")
    .forEach((s, i) => {
      const row = s.replace(/\r$/, "");
      if (row.trim() === "") return;
      const f = row.split("\t");
      if (f.length !== 2)
        throw new Error(`${path}:${i + 1}: ${f.length} fields, expected 2 (question, answer)`);
      if (!/^-?[0-9][0-9.,]*$/.test(f[1]!.trim()))
        throw new Error(`${path}:${i + 1}: field 'answer' must be a number, got '${f[1]}'`);
      out.push({ question: f[0]!, answerNumber: f[1]!.trim() });
    });
  return out;
}
