// The scaling-law picture of `herd scaling fit --svg` (like the paper's Figures 2 and 3): on the left
// the IsoFLOP curves — each budget's runs as points of loss against training tokens (log scale), its
// fitted parabola and its minimum D*; on the right the minima against the budget on log-log axes with
// the fitted power law D*(C) = A·C^α as a line.
import type { IsoFlop, PowerLaw } from "./scaling.js";

const W = 960;
const H = 400;
const PANEL = 480;
const PAD = { left: 60, right: 20, top: 30, bottom: 44 };
const COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"];

type Scale = (v: number) => number;

function axes(x0: number, lo: [number, number], hi: [number, number], labels: [string, string]) {
  const sx: Scale = (v) => x0 + PAD.left + ((PANEL - PAD.left - PAD.right) * (v - lo[0])) / (hi[0] - lo[0]);
  const sy: Scale = (v) => PAD.top + ((H - PAD.top - PAD.bottom) * (hi[1] - v)) / (hi[1] - lo[1]);
  const out = [
    `<line x1="${x0 + PAD.left}" y1="${H - PAD.bottom}" x2="${x0 + PANEL - PAD.right}" y2="${H - PAD.bottom}" stroke="black"/>`,
    `<line x1="${x0 + PAD.left}" y1="${PAD.top}" x2="${x0 + PAD.left}" y2="${H - PAD.bottom}" stroke="black"/>`,
    `<text x="${x0 + PANEL / 2}" y="${H - 8}" text-anchor="middle">${labels[0]}</text>`,
    `<text x="${x0 + 14}" y="${H / 2}" text-anchor="middle" transform="rotate(-90 ${x0 + 14} ${H / 2})">${labels[1]}</text>`,
  ];
  for (let i = 0; i <= 4; i++) {
    const vx = lo[0] + ((hi[0] - lo[0]) * i) / 4;
    const vy = lo[1] + ((hi[1] - lo[1]) * i) / 4;
    out.push(
      `<text x="${sx(vx).toFixed(1)}" y="${H - PAD.bottom + 14}" text-anchor="middle">${vx.toFixed(2)}</text>`,
      `<text x="${x0 + PAD.left - 4}" y="${(sy(vy) + 4).toFixed(1)}" text-anchor="end">${vy.toFixed(2)}</text>`,
    );
  }
  return { sx, sy, out };
}

function range(vs: number[], pad: number): [number, number] {
  const lo = Math.min(...vs);
  const hi = Math.max(...vs);
  const d = hi - lo > 1e-9 ? (hi - lo) * pad : 0.5;
  return [lo - d, hi + d];
}

/** The SVG text of the IsoFLOP curves and the power-law fit. */
export function scalingSvg(optima: IsoFlop[], law: PowerLaw, title = "scaling law fit"): string {
  const out = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`,
    `<rect width="${W}" height="${H}" fill="white"/>`,
    `<text x="${W / 2}" y="16" text-anchor="middle" font-size="13">${title}</text>`,
  ];
  // Left: loss against log10(tokens), one colour per budget.
  const xs = optima.flatMap((o) => [...o.points.map((p) => Math.log10(p.tokens)), Math.log10(o.tokens)]);
  const ys = optima.flatMap((o) => [...o.points.map((p) => p.loss), o.loss]);
  const [xlo, xhi] = range(xs, 0.05);
  const [ylo, yhi] = range(ys, 0.05);
  const left = axes(0, [xlo, ylo], [xhi, yhi], ["log10 training tokens", "validation loss"]);
  out.push(...left.out);
  for (const [i, o] of optima.entries()) {
    const color = COLORS[i % COLORS.length]!;
    const px = o.points.map((p) => Math.log10(p.tokens));
    const a = Math.min(...px, Math.log10(o.tokens));
    const b = Math.max(...px, Math.log10(o.tokens));
    const curve: string[] = [];
    for (let k = 0; k <= 40; k++) {
      const x = a + ((b - a) * k) / 40;
      const y = o.coef[0] + o.coef[1] * x + o.coef[2] * x * x;
      if (y < ylo || y > yhi) continue;
      curve.push(`${curve.length === 0 ? "M" : "L"}${left.sx(x).toFixed(1)},${left.sy(y).toFixed(1)}`);
    }
    out.push(
      `<path class="isoflop" d="${curve.join(" ")}" fill="none" stroke="${color}" stroke-width="1.5"/>`,
    );
    for (const p of o.points)
      out.push(
        `<circle cx="${left.sx(Math.log10(p.tokens)).toFixed(1)}" cy="${left.sy(p.loss).toFixed(1)}" r="3" fill="${color}"/>`,
      );
    const mx = left.sx(Math.log10(o.tokens));
    const my = left.sy(o.loss);
    out.push(
      `<path d="M${(mx - 5).toFixed(1)},${(my - 5).toFixed(1)} L${(mx + 5).toFixed(1)},${(my + 5).toFixed(1)} M${(mx - 5).toFixed(1)},${(my + 5).toFixed(1)} L${(mx + 5).toFixed(1)},${(my - 5).toFixed(1)}" stroke="black"/>`,
      `<text x="${PANEL - PAD.right - 4}" y="${PAD.top + 12 + 13 * i}" text-anchor="end" fill="${color}">${o.flops.toExponential(1)} FLOPs</text>`,
    );
  }
  // Right: log10 D* against log10 C, with the fitted line.
  const cx = optima.map((o) => Math.log10(o.flops));
  const dy = optima.map((o) => Math.log10(o.tokens));
  const [clo, chi] = range(cx, 0.1);
  const line = (c: number) => Math.log10(law.A) + law.alpha * c;
  const [dlo, dhi] = range([...dy, line(clo), line(chi)], 0.05);
  const right = axes(PANEL, [clo, dlo], [chi, dhi], ["log10 compute (FLOPs)", "log10 optimal tokens"]);
  out.push(
    ...right.out,
    `<path class="powerlaw" d="M${right.sx(clo).toFixed(1)},${right.sy(line(clo)).toFixed(1)} L${right.sx(chi).toFixed(1)},${right.sy(line(chi)).toFixed(1)}" stroke="#444" stroke-dasharray="5 3" fill="none"/>`,
    `<text x="${PANEL + PAD.left + 6}" y="${PAD.top + 12}">D* = ${law.A.toPrecision(3)}·C^${law.alpha.toFixed(3)}</text>`,
  );
  for (let i = 0; i < optima.length; i++)
    out.push(
      `<circle class="optimum" cx="${right.sx(cx[i]!).toFixed(1)}" cy="${right.sy(dy[i]!).toFixed(1)}" r="4" fill="${COLORS[i % COLORS.length]}"/>`,
    );
  out.push("</svg>");
  return `${out.join("\n")}\n`;
}
