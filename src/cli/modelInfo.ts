// `herd model info PRESET|DIR`: the shape of a Llama model (a preset name or a checkpoint directory) and
// what it costs: parameters, FLOPs per token, KV-cache bytes per token, weight memory at each dtype.
import { existsSync } from "node:fs";
import { commandHelp, HELP_OPTION, parseCli, type Schema, UsageError } from "../core/schema.js";
import type { LlamaConfig } from "../model/config.js";
import { readConfig } from "../model/load.js";
import {
  decodeBytesPerToken,
  flopsPerToken,
  kvBytesPerToken,
  paramBreakdown,
  preset,
  presetNames,
  weightBytes,
} from "../model/presets.js";

export const OPTIONS = {
  context: {
    type: "integer",
    min: 0,
    default: 0,
    doc: "earlier tokens attended to, for the attention term of FLOPs/token",
  },
  json: { type: "boolean", default: false, doc: "print the figures as JSON" },
  ...HELP_OPTION,
} as const satisfies Schema;

export const HELP = commandHelp(
  "usage: herd model info PRESET|DIR [--context N] [--json]",
  OPTIONS,
  `PRESET is one of: ${presetNames().join(", ")}
DIR is a checkpoint directory (config.json or params.json).`,
);

const int = (n: number) => n.toLocaleString("en-US");

function bytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let u = 0;
  while (n >= 1024 && u < units.length - 1) {
    n /= 1024;
    u++;
  }
  return `${n.toFixed(u === 0 || Number.isInteger(n) ? 0 : 2)} ${units[u]}`;
}

function flops(n: number): string {
  for (const [v, s] of [
    [1e12, "T"],
    [1e9, "G"],
    [1e6, "M"],
  ] as const)
    if (n >= v) return `${(n / v).toFixed(2)} ${s}FLOP`;
  return `${int(n)} FLOP`;
}

export function describe(c: LlamaConfig, context: number) {
  const p = paramBreakdown(c);
  const f = flopsPerToken(c, context);
  return {
    parameters: p.total,
    nonEmbeddingParameters: p.nonEmbedding,
    flopsPerToken: { context, forward: f.forward, training: f.training },
    kvCacheBytesPerToken: { bf16: kvBytesPerToken(c, "bf16"), f32: kvBytesPerToken(c, "f32") },
    weightBytes: { f32: weightBytes(c, "f32"), bf16: weightBytes(c, "bf16") },
    decodeBytesPerToken: { f32: decodeBytesPerToken(c, "f32"), bf16: decodeBytesPerToken(c, "bf16") },
  };
}

export async function run(argv: string[]): Promise<number> {
  let parsed: ReturnType<typeof parseCli<typeof OPTIONS>>;
  try {
    parsed = parseCli(OPTIONS, argv, { positionals: true });
    if (!parsed.values.help && parsed.positionals.length !== 1)
      throw new UsageError("give one PRESET or DIR");
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`herd model info: ${e.message}\n\n${HELP}\n`);
    return 2;
  }
  const { values, positionals } = parsed;
  if (values.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  const what = positionals[0]!;
  const context = values.context;
  const isPreset = presetNames().includes(what);
  if (!isPreset && !existsSync(what)) {
    process.stderr.write(
      `herd model info: '${what}' is neither a preset (${presetNames().join(", ")}) nor a directory\n`,
    );
    return 2;
  }
  const c = isPreset ? preset(what) : readConfig(what);
  const d = describe(c, context);
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ name: what, config: c, ...d }, null, 2)}\n`);
    return 0;
  }
  const s = c.ropeScaling;
  const lines = [
    `${what}${isPreset ? " (preset)" : ""}`,
    `  layers ${c.numHiddenLayers} · dim ${c.hiddenSize} · heads ${c.numAttentionHeads} / KV ${c.numKeyValueHeads} · head dim ${c.headDim} · FFN ${c.intermediateSize} · vocab ${int(c.vocabSize)}${c.tieWordEmbeddings ? " · tied embeddings" : ""}`,
    `  RoPE θ ${int(c.ropeTheta)}${s ? ` · llama3 scaling ×${s.factor} (α ${s.lowFreqFactor}, β ${s.highFreqFactor}, L₀ ${int(s.originalMaxPositionEmbeddings)})` : ""} · max positions ${int(c.maxPositionEmbeddings)} · RMSNorm ε ${c.rmsNormEps}`,
    `parameters        ${int(d.parameters)} (non-embedding ${int(d.nonEmbeddingParameters)})`,
    `FLOPs/token       forward ${flops(d.flopsPerToken.forward)} · training ${flops(d.flopsPerToken.training)} (context ${int(context)})`,
    `KV cache/token    ${bytes(d.kvCacheBytesPerToken.bf16)} bf16 · ${bytes(d.kvCacheBytesPerToken.f32)} f32`,
    `weights           ${bytes(d.weightBytes.bf16)} bf16 · ${bytes(d.weightBytes.f32)} f32`,
    `read per decode   ${bytes(d.decodeBytesPerToken.bf16)} bf16 · ${bytes(d.decodeBytesPerToken.f32)} f32 (weights per generated token)`,
  ];
  process.stdout.write(`${lines.join("\n")}\n`);
  return 0;
}
