// The few lines `herd data` commands print when a run ends: the funnel and where things were written.
import type { Report } from "../data/pipeline/report.js";

export function printSummary(run: string, r: Report): void {
  const out = process.stdout;
  for (const b of r.funnel) {
    const drops = Object.entries(b.dropped)
      .map(([k, v]) => `${k}: ${v.docs}`)
      .join(", ");
    out.write(
      `${b.name.padEnd(18)} ${String(b.docsOut).padStart(9)} docs ${String(b.bytesOut).padStart(12)} bytes${drops ? `  (dropped ${drops})` : ""}\n`,
    );
  }
  const issues = Object.entries(r.issues.counts);
  if (issues.length > 0) {
    out.write(
      `input issues: ${issues.map(([k, v]) => `${k} ${v}`).join(", ")} (first ones in report.json)\n`,
    );
    for (const i of r.issues.first.slice(0, 5))
      out.write(`  ${i.file}${i.line ? `:${i.line}` : ""}: ${i.kind}: ${i.message}\n`);
  }
  out.write(`output: ${run}/output/  report: ${run}/report.json, ${run}/report.svg\n`);
}
