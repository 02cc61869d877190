// The loss-curve picture of a run (loss.svg in the run folder): training loss against step, a dashed
// line and the stage name where each stage (initial, long-context steps, annealing) begins; the held-out
// loss (valLoss, where a step has one) as a second series with dots and a legend. Rewritten
// atomically as training goes, so a browser tab on it shows the run so far.
import { writeFileAtomic } from "../io/atomic.js";
import { escapeXml as esc } from "../io/xml.js";
import type { StepMetrics } from "./metrics.js";

const W = 720;
const H = 360;
const PAD = { left: 56, right: 16, top: 24, bottom: 40 };

/** The SVG text of a loss curve over `metrics` (steps in order). */
export function lossCurveSvg(metrics: StepMetrics[], title = "training loss"): string {
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="15" text-anchor="middle" font-size="13">${esc(title)}</text>`,
  ];
  const pts = metrics.filter((m) => Number.isFinite(m.loss));
  if (pts.length > 0) {
    const maxStep = Math.max(pts.at(-1)!.totalSteps, pts.at(-1)!.step);
    const val = pts.filter((m) => m.valLoss !== undefined && Number.isFinite(m.valLoss));
    const all = [...pts.map((m) => m.loss), ...val.map((m) => m.valLoss!)];
    let lo = Math.min(...all);
    let hi = Math.max(...all);
    if (hi - lo < 1e-6) {
      lo -= 0.5;
      hi += 0.5;
    }
    const x = (s: number) => PAD.left + ((W - PAD.left - PAD.right) * s) / Math.max(1, maxStep);
    const y = (l: number) => PAD.top + ((H - PAD.top - PAD.bottom) * (hi - l)) / (hi - lo);
    out.push(
      `<line x1="${PAD.left}" y1="${H - PAD.bottom}" x2="${W - PAD.right}" y2="${H - PAD.bottom}" stroke="black"/>`,
      `<line x1="${PAD.left}" y1="${PAD.top}" x2="${PAD.left}" y2="${H - PAD.bottom}" stroke="black"/>`,
    );
    for (let i = 0; i <= 4; i++) {
      const l = lo + ((hi - lo) * i) / 4;
      out.push(`<text x="${PAD.left - 4}" y="${y(l) + 4}" text-anchor="end">${l.toFixed(2)}</text>`);
      const s = Math.round((maxStep * i) / 4);
      out.push(`<text x="${x(s)}" y="${H - PAD.bottom + 14}" text-anchor="middle">${s}</text>`);
    }
    out.push(`<text x="${W / 2}" y="${H - 6}" text-anchor="middle">step</text>`);
    let prev = "";
    for (const m of pts)
      if (m.stage !== prev) {
        const sx = x(m.step - 1);
        out.push(
          `<line class="stage" x1="${sx}" y1="${PAD.top}" x2="${sx}" y2="${H - PAD.bottom}" stroke="#888" stroke-dasharray="4 3"/>`,
          `<text x="${sx + 3}" y="${PAD.top + 10}" fill="#555">${esc(m.stage)}</text>`,
        );
        prev = m.stage;
      }
    const path = pts.map((m, i) => `${i === 0 ? "M" : "L"}${x(m.step).toFixed(1)},${y(m.loss).toFixed(1)}`);
    out.push(`<path d="${path.join(" ")}" fill="none" stroke="#1f77b4" stroke-width="1.5"/>`);
    if (val.length > 0) out.push(...valSeries(val, x, y));
  }
  out.push("</svg>");
  return `${out.join("\n")}\n`;
}

/** The held-out loss: an orange line through dots, and a legend naming both series. */
function valSeries(val: StepMetrics[], x: (s: number) => number, y: (l: number) => number): string[] {
  const p = (m: StepMetrics) => `${x(m.step).toFixed(1)},${y(m.valLoss!).toFixed(1)}`;
  const lx = W - PAD.right - 150;
  return [
    `<path class="val" d="${val.map((m, i) => `${i === 0 ? "M" : "L"}${p(m)}`).join(" ")}" fill="none" stroke="#ff7f0e" stroke-width="1.5"/>`,
    ...val.map(
      (m) => `<circle cx="${x(m.step).toFixed(1)}" cy="${y(m.valLoss!).toFixed(1)}" r="2.5" fill="#ff7f0e"/>`,
    ),
    `<line x1="${lx}" y1="${PAD.top + 6}" x2="${lx + 16}" y2="${PAD.top + 6}" stroke="#1f77b4" stroke-width="2"/>`,
    `<text x="${lx + 20}" y="${PAD.top + 10}">training loss</text>`,
    `<line x1="${lx}" y1="${PAD.top + 20}" x2="${lx + 16}" y2="${PAD.top + 20}" stroke="#ff7f0e" stroke-width="2"/>`,
    `<text x="${lx + 20}" y="${PAD.top + 24}">held-out loss (valLoss)</text>`,
  ];
}

/** Write the curve to `path` atomically. */
export function writeLossCurve(path: string, metrics: StepMetrics[], title?: string): void {
  writeFileAtomic(path, lossCurveSvg(metrics, title));
}
