// The recipes built from the stages below: today the demo pre-training `npm start` runs (its corpus, its
// vocabulary and shards, its samples).
export * from "./demo.js";
