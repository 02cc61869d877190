// Malformed input, reported instead of crashing: a broken JSON line, invalid UTF-8, a truncated
// compressed file, an unreadable record. Readers call an IssueSink for each; the run's report lists them
// with file and line, and counts them by kind.

export type IssueKind = "json" | "utf8" | "truncated" | "record" | "format" | "io";

export interface InputIssue {
  file: string;
  /** 1-based line (JSONL) or record number (WARC, Parquet row) when known. */
  line?: number;
  kind: IssueKind;
  message: string;
  /** What happened to the data: skipped, or kept with U+FFFD replacements. */
  action: "skipped" | "kept" | "stopped";
}

export type IssueSink = (issue: InputIssue) => void;

/** Collects issues, keeping counts of all and the details of the first `keep`. */
export class IssueLog {
  readonly counts: Partial<Record<IssueKind, number>> = {};
  readonly first: InputIssue[] = [];
  constructor(private readonly keep = 1000) {}
  readonly sink: IssueSink = (issue) => {
    this.counts[issue.kind] = (this.counts[issue.kind] ?? 0) + 1;
    if (this.first.length < this.keep) this.first.push(issue);
  };
  get total(): number {
    return Object.values(this.counts).reduce((a, b) => a + (b ?? 0), 0);
  }
}

export function formatIssue(i: InputIssue): string {
  return `${i.file}${i.line !== undefined ? `:${i.line}` : ""}: ${i.kind}: ${i.message} (${i.action})`;
}
