// The bottom layer in one import: the HERD_* knobs (declared once, checked before a command starts), the
// package root shipped files are found from, and the one seeded random generator.
export * from "./knobs.js";
export * from "./paths.js";
export * from "./rng.js";
