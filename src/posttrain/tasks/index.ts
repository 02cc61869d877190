// Verifiable tasks for the small post-training recipe in one import: the generator, its files, the checker.

export type { ArithmeticOptions } from "./arithmetic.js";
export * from "./checker.js";
export { type Fact, factPool } from "./facts.js";
export * from "./generate.js";
