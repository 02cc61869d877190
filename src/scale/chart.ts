// The SVG of `herd plan --svg`: one row per layout, fastest first; on the left its throughput (tokens/s
// as a bar, TFLOPs/GPU and MFU written beside it), on the right its memory per GPU stacked by kind
// (weights, gradients, optimiser state, activations, CP's K/V and the logits) against the usable memory.
import { escapeXml } from "../io/xml.js";
import { GiB } from "./constants.js";
import type { Plan } from "./search.js";

const ROW = 22;
const TOP = 48;
const LABEL = 230;
const BAR = 300;
const GAP = 190;
const W = LABEL + BAR + GAP + BAR + 40;
const KINDS = [
  ["weights", "#1f77b4"],
  ["gradients", "#ff7f0e"],
  ["optimizer", "#2ca02c"],
  ["activations", "#d62728"],
  ["other", "#9467bd"],
] as const;

/** `TP8 CP1 PP16 DP64 V8 mb1` (+ ` rc` with recomputation). */
export function layoutName(p: Plan): string {
  const l = p.layout;
  return `TP${l.tp} CP${l.cp} PP${l.pp} DP${l.dp} V${l.virtualStages} mb${l.microBatch}${l.recompute ? " rc" : ""}`;
}

/** 2.68M, 57.6k, 812. */
function tokens(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : n.toFixed(0);
}

function rect(x: number, y: number, w: number, color: string): string {
  return `<rect x="${x.toFixed(1)}" y="${y}" width="${Math.max(0, w).toFixed(1)}" height="${ROW - 6}" fill="${color}"/>`;
}

export function planSvg(plans: readonly Plan[], title: string): string {
  const H = TOP + ROW * plans.length + 30;
  const fastest = Math.max(...plans.map((p) => p.time.tokensPerSecond), 1);
  const limit = Math.max(...plans.map((p) => p.memory.limit), 1);
  const memMax = Math.max(limit, ...plans.map((p) => p.memory.total));
  const mx = LABEL + BAR + GAP;
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="16" text-anchor="middle" font-size="13">${escapeXml(title)}</text>`,
    `<text x="${LABEL}" y="36">tokens/s (TFLOPs/GPU, MFU)</text>`,
    `<text x="${mx}" y="36">memory per GPU, GiB (line: usable ${(limit / GiB).toFixed(1)})</text>`,
  ];
  plans.forEach((p, i) => {
    const y = TOP + i * ROW;
    const t = p.time;
    const m = p.memory;
    out.push(
      `<text x="${LABEL - 6}" y="${y + 12}" text-anchor="end">${escapeXml(layoutName(p))}</text>`,
      rect(LABEL, y, (BAR * t.tokensPerSecond) / fastest, "#4c72b0"),
      `<text x="${LABEL + BAR + 4}" y="${y + 12}">${tokens(t.tokensPerSecond)} (${Math.round(t.tflopsPerGpu)} TF, ${(100 * t.mfu).toFixed(0)}%)</text>`,
    );
    const parts = [m.weights, m.gradients, m.optimizer, m.activations, m.kvGather + m.logits];
    let x = mx;
    parts.forEach((b, k) => {
      const w = (BAR * b) / memMax;
      out.push(rect(x, y, w, KINDS[k]![1]));
      x += w;
    });
    out.push(`<text x="${x + 4}" y="${y + 12}">${(m.total / GiB).toFixed(1)}</text>`);
  });
  const lx = mx + (BAR * limit) / memMax;
  out.push(
    `<line x1="${lx.toFixed(1)}" y1="${TOP - 4}" x2="${lx.toFixed(1)}" y2="${H - 26}" stroke="black" stroke-dasharray="4 3"/>`,
  );
  KINDS.forEach(([name, color], k) => {
    const x = mx + k * 70;
    out.push(rect(x, H - 22, 10, color), `<text x="${x + 13}" y="${H - 10}">${name}</text>`);
  });
  out.push("</svg>");
  return `${out.join("\n")}\n`;
}
