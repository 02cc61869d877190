// Generation in one import: sampling, text codecs, the generation loop, multi-turn chat.
export * from "./chat.js";
export * from "./codec.js";
export * from "./generate.js";
export * from "./sampling.js";
export * from "./shared.js";
