// The request features the HTTP layer takes, in one object: structured output (a ConstraintFactory per
// vocabulary, json_object / json_schema, forced tool calls), tool calling (the Llama 3.x tool prompt from
// OpenAI messages and tools, the streamed tool-call parser, OpenAI-shaped calls), and the Llama Guard 3
// safety layer (the classifier, refusals, sentence boundaries for guarding a stream). docs/serve-features.md
// says how each is used.
import { LlamaGuardClassifier, refusalMessage, verdictOf } from "./guard/classifier.js";
import { SentenceBoundaries } from "./guard/sentences.js";
import { JsonConstraintFactory } from "./structured/constraint.js";
import { SchemaError } from "./structured/schema.js";
import { type ConstraintVocab, codecVocab, tokenizerVocab } from "./structured/trie.js";
import {
  chatMessages,
  contentText,
  toOpenAIToolCalls,
  toolCallDeltas,
  toolDefinitions,
} from "./tools/prompt.js";
import { LlamaToolCallStream } from "./tools/stream.js";

export const features = {
  structured: {
    /** The byte vocabulary of a TextCodec (Llama 3 tokenizer or piece list) with the request's stop ids. */
    vocabOf: codecVocab,
    tokenizerVocab,
    /** Build once per model (about 2 s for 128K tokens): `.json(schema|null)`, `.toolCall(tools, choice)`. */
    factory: (vocab: ConstraintVocab) => new JsonConstraintFactory(vocab),
    /** Thrown by `.json` / `.toolCall` for a schema that cannot be enforced: a 400 naming `path`. */
    SchemaError,
  },
  tools: {
    /** OpenAI messages + tools → the dialog's Message list for ChatFormat. */
    chatMessages,
    toolDefinitions,
    contentText,
    /** A fresh parser per reply. */
    stream: () => new LlamaToolCallStream(),
    toOpenAIToolCalls,
    toolCallDeltas,
  },
  guard: {
    /** new features.guard.Classifier(model, chatFormat, { categories }) */
    Classifier: LlamaGuardClassifier,
    verdictOf,
    refusalMessage,
    /** A fresh boundary finder per streamed reply. */
    sentences: () => new SentenceBoundaries(),
  },
} as const;

export type ServeFeatures = typeof features;
