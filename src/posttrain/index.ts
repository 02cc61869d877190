// Post-training (spec §7): data readers and dialog tags, SFT, the reward model, DPO and model averaging,
// LoRA adapters (PEFT layout), rejection sampling and the verifiable tasks, the rounds that chain them, and the loop they share:
// `import { sft, dpo, … } from "herd/posttrain"`.
export { averageModels, normaliseWeights } from "./average.js";
export * from "./config.js";
export * from "./data.js";
export * from "./dpo.js";
export { chatFormatFor, writeFinal } from "./io.js";
export { targetLogProbs } from "./logprobs.js";
export * from "./loop.js";
export * from "./lora.js";
export * from "./pack.js";
export * from "./peft.js";
export * from "./rejectionSampling.js";
export * from "./render.js";
export * from "./reward.js";
export * from "./rounds.js";
export * from "./sft.js";
export * from "./tasks/index.js";
