// The report as one SVG page, drawn by hand (no dependency): the funnel (documents and bytes kept after
// each block, as bars relative to the input), the output's languages, the mix asked vs achieved, and the
// near-duplicate cluster-size histogram.
import { escapeXml as esc } from "../../io/xml.js";
import type { Report } from "./report.js";

const W = 760;
const fmt = (n: number) =>
  n >= 1e9
    ? `${(n / 1e9).toFixed(2)}G`
    : n >= 1e6
      ? `${(n / 1e6).toFixed(2)}M`
      : n >= 1e3
        ? `${(n / 1e3).toFixed(1)}k`
        : String(Math.round(n * 100) / 100);

interface Bar {
  label: string;
  values: number[];
  notes: string[];
}

/** A titled chart of horizontal bars (one or two per row) scaled to `max`; returns [svg, height]. */
function bars(
  y: number,
  title: string,
  rows: Bar[],
  max: number,
  colors: string[],
  legend: string[],
): [string, number] {
  const parts = [`<text x="10" y="${y + 16}" font-size="15" font-weight="bold">${esc(title)}</text>`];
  legend.forEach((l, i) => {
    parts.push(`<rect x="${W - 250 + i * 120}" y="${y + 5}" width="12" height="12" fill="${colors[i]}"/>`);
    parts.push(`<text x="${W - 234 + i * 120}" y="${y + 15}" font-size="11">${esc(l)}</text>`);
  });
  let yy = y + 28;
  const barW = 360;
  for (const r of rows) {
    parts.push(`<text x="10" y="${yy + 11}" font-size="11">${esc(r.label)}</text>`);
    r.values.forEach((v, i) => {
      const w = max > 0 ? Math.max(0, (v / max) * barW) : 0;
      parts.push(`<rect x="190" y="${yy + i * 9}" width="${w.toFixed(1)}" height="8" fill="${colors[i]}"/>`);
    });
    parts.push(`<text x="${190 + barW + 8}" y="${yy + 11}" font-size="10">${esc(r.notes.join("  "))}</text>`);
    yy += Math.max(16, r.values.length * 9 + 6);
  }
  return [parts.join("\n"), yy - y + 10];
}

export function reportSvg(r: Report): string {
  const parts: string[] = [];
  let y = 10;
  parts.push(
    `<text x="10" y="${y + 14}" font-size="18" font-weight="bold">${esc(r.name)}: data pipeline report</text>`,
  );
  y += 30;
  const first = r.funnel[0];
  const docs0 = first ? first.docsOut : 0;
  const bytes0 = first ? first.bytesOut : 0;
  const funnelRows = r.funnel.map((b) => ({
    label: b.name,
    values: [b.docsOut, (b.bytesOut / Math.max(1, bytes0)) * docs0],
    notes: [
      `${fmt(b.docsOut)} docs`,
      `${fmt(b.bytesOut)}B`,
      ...Object.entries(b.dropped).map(([k, v]) => `-${fmt(v.docs)} ${k}`),
    ],
  }));
  let [svg, h] = bars(
    y,
    "Funnel (kept after each block)",
    funnelRows,
    docs0,
    ["#4878d0", "#ee854a"],
    ["documents", "bytes"],
  );
  parts.push(svg);
  y += h;
  const langs = Object.entries(r.languages)
    .sort((a, b) => b[1].bytes - a[1].bytes)
    .slice(0, 15);
  if (langs.length > 1 || (langs[0] && langs[0][0] !== "unknown")) {
    const max = Math.max(...langs.map(([, v]) => v.docs));
    [svg, h] = bars(
      y,
      "Output languages (documents, top 15)",
      langs.map(([k, v]) => ({
        label: k,
        values: [v.docs],
        notes: [`${fmt(v.docs)} docs`, `${fmt(v.bytes)}B`],
      })),
      max,
      ["#6acc64"],
      [],
    );
    parts.push(svg);
    y += h;
  }
  if (r.mix) {
    const rows = Object.keys(r.mix.asked).map((k) => ({
      label: k,
      values: [r.mix!.asked[k]!, r.mix!.achieved[k] ?? 0],
      notes: [
        `asked ${(r.mix!.asked[k]! * 100).toFixed(1)}%`,
        `got ${((r.mix!.achieved[k] ?? 0) * 100).toFixed(1)}%`,
      ],
    }));
    [svg, h] = bars(y, "Mix: share of output bytes", rows, 1, ["#8c8c8c", "#d65f5f"], ["asked", "achieved"]);
    parts.push(svg);
    y += h;
  }
  if (r.duplicates) {
    const sizes = Object.entries(r.duplicates.clusterSizes)
      .sort((a, b) => Number(a[0]) - Number(b[0]))
      .slice(0, 20);
    const max = Math.max(1, ...sizes.map(([, v]) => v));
    [svg, h] = bars(
      y,
      `Near-duplicate clusters by size (${fmt(r.duplicates.removed)} of ${fmt(r.duplicates.documents)} removed)`,
      sizes.map(([k, v]) => ({ label: `size ${k}`, values: [v], notes: [`${v} clusters`] })),
      max,
      ["#956cb4"],
      [],
    );
    parts.push(svg);
    y += h;
  }
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${y + 10}" font-family="sans-serif">\n<rect width="100%" height="100%" fill="white"/>\n${parts.join("\n")}\n</svg>\n`;
}
