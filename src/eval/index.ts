// Evaluation in one import: the harness behind `herd eval` (tasks by their lm-evaluation-harness names,
// the data sets' readers, prompts, log-likelihood scoring with a shared prefix, results files), the
// held-out loss of a pre-training run, perplexity, needle in a haystack, the long-context stage checks,
// and the evaluator `herd pretrain` hands the trainer. The code sandbox is src/eval/code/ (its own import).
export * from "./datasets.js";
export * from "./harness.js";
export * from "./heldout.js";
export * from "./loglikelihood.js";
export * from "./longContext.js";
export * from "./niah.js";
export * from "./perplexity.js";
export * from "./pretrainEvaluator.js";
export * from "./prompt.js";
export * from "./registry.js";
export * from "./report.js";
export * from "./task.js";
