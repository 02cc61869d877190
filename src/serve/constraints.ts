// The structured-output module `herd serve` hands its engine thread (engine/worker.ts imports it by path
// and calls `createConstraintFactory`): the JSON-schema constraint factory (structured/) over the served
// model's vocabulary, built once at start-up, with the ids that may end a complete value — the config's
// end ids and the chat format's <|eot_id|>/<|eom_id|>.
import { codecFor } from "../generate/codec.js";
import { stopIdsOf } from "../model/config.js";
import { readConfig } from "../model/load.js";
import { ChatFormat } from "../tokenizer/chat.js";
import type { ConstraintFactory } from "./contracts.js";
import { JsonConstraintFactory } from "./structured/constraint.js";
import { codecVocab } from "./structured/trie.js";

export function createConstraintFactory(
  dir: string,
  vocabSize: number,
  tokenizer?: string,
): ConstraintFactory {
  const codec = codecFor(dir, vocabSize, tokenizer);
  if (!codec) throw new Error(`${dir}: structured output needs the model's tokenizer`);
  const stops = new Set(stopIdsOf(readConfig(dir)));
  if (codec.tokenizer) for (const id of new ChatFormat(codec.tokenizer).stopIds()) stops.add(id);
  return new JsonConstraintFactory(codecVocab(codec, [...stops]));
}

/** This module's path, for the engine thread to import. */
export const CONSTRAINT_MODULE = new URL(import.meta.url).href;
