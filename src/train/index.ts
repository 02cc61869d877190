// Pre-training in one import: config, loader, optimiser, schedule, checkpoints, metrics, the loop.
export * from "./checkpoint.js";
export * from "./config.js";
export * from "./loader.js";
export * from "./lossCurve.js";
export * from "./metrics.js";
export * from "./optimizer.js";
export * from "./rng.js";
export * from "./scaling.js";
export * from "./schedule.js";
export * from "./trainer.js";
