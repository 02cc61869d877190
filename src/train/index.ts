// Pre-training in one import: config, loader, held-out split, optimiser, schedule, checkpoints, metrics,
// scaling laws, the evaluator hook and the loop (evaluation itself is src/eval/).
export * from "./checkpoint.js";
export * from "./config.js";
export * from "./evaluator.js";
export * from "./heldoutSplit.js";
export * from "./loader.js";
export * from "./longContextConfig.js";
export * from "./lossCurve.js";
export * from "./metrics.js";
export * from "./optimizer.js";
export * from "./rng.js";
export * from "./scaling.js";
export * from "./scalingRuns.js";
export * from "./schedule.js";
export * from "./trainer.js";
