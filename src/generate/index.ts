// Generation in one import: sampling, text codecs, the generation loop.
export * from "./codec.js";
export * from "./generate.js";
export * from "./sampling.js";
