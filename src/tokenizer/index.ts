// The tokenizer stage's public surface: the Llama 3 tokenizer, the BPE trainer, and the chat, tool and
// Llama Guard formats. Nothing here depends on the tensor engine.
export { ChatFormat, type Message, type Role, renderDialog } from "./chat.js";
export {
  encodeGuardPrompt,
  type GuardVerdict,
  guardPromptText,
  LLAMA_GUARD_3_CATEGORIES,
  parseGuardVerdict,
  unsafeProbability,
} from "./guard.js";
export { META_PATTERN, splitPieces } from "./pattern.js";
export {
  formatRanks,
  KNOWN_RANKS,
  MAX_RANKS,
  parseRanks,
  RanksFormatError,
  readRanks,
} from "./ranks.js";
export * from "./specialTokens.js";
export { StreamDecoder } from "./streaming.js";
export { type EncodeOptions, Tokenizer } from "./tiktoken.js";
export * from "./tools.js";
export {
  PieceCounter,
  type TrainOptions,
  type TrainProgress,
  type TrainResult,
  trainBpe,
  trainFromCounts,
} from "./train.js";
