// Code-execution evaluation in one import: HumanEval's reader, prompts and checks, the OS sandbox the
// generated code runs in, and pass@k.
export * from "./humaneval.js";
export * from "./sandbox.js";
export * from "./score.js";
