// Evaluation in one import: the held-out loss of a pre-training run, perplexity, needle in a haystack,
// the long-context stage checks, and the evaluator `herd pretrain` hands the trainer.
export * from "./heldout.js";
export * from "./longContext.js";
export * from "./niah.js";
export * from "./perplexity.js";
export * from "./pretrainEvaluator.js";
