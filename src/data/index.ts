// The data stage in one import: documents, readers and writers, every pipeline step (the filters, dedup,
// language id, quality, PII, domain tags, mix, tokenize), pipeline files and their runs (local or Slurm),
// and the token shards pre-training reads. Nothing here depends on the tensor engine.
export * from "./block.js";
export * from "./document.js";
export * from "./domains.js";
export * from "./filters/dirtyWords.js";
export * from "./filters/heuristics.js";
export * from "./filters/kl.js";
export * from "./filters/repetition.js";
export * from "./html.js";
export * from "./issues.js";
export * from "./langid.js";
export * from "./minhash.js";
export * from "./mix.js";
export * from "./pii.js";
export * from "./pipeline/config.js";
export * from "./pipeline/inputs.js";
export * from "./pipeline/registry.js";
export * from "./pipeline/report.js";
export * from "./pipeline/run.js";
export * from "./pipeline/slurm.js";
export * from "./pipeline/types.js";
export * from "./quality.js";
export * from "./readers/index.js";
export * from "./shards.js";
export * from "./steps/lineDedup.js";
export * from "./steps/minhashDedup.js";
export * from "./steps/urlDedup.js";
export * from "./tokenize.js";
export * from "./url.js";
export * from "./writers.js";
