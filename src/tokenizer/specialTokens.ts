// The 256 special tokens of Llama 3.1 (spec §3.5), numbered after the last BPE rank: for Meta's file,
// ids 128000–128255. Names as in Meta's Llama 3.1 reference tokenizer; reserved slots are
// <|reserved_special_token_N|>. The same 256 names follow any trained vocabulary (ids numRanks…+255).

/** The named (non-reserved) special tokens, in id order from the first special id. */
export const NAMED_SPECIAL_TOKENS = [
  "<|begin_of_text|>",
  "<|end_of_text|>",
  "<|reserved_special_token_0|>",
  "<|reserved_special_token_1|>",
  "<|finetune_right_pad_id|>",
  "<|step_id|>",
  "<|start_header_id|>",
  "<|end_header_id|>",
  "<|eom_id|>",
  "<|eot_id|>",
  "<|python_tag|>",
] as const;

export const NUM_SPECIAL_TOKENS = 256;

export const BEGIN_OF_TEXT = "<|begin_of_text|>";
export const END_OF_TEXT = "<|end_of_text|>";
export const FINETUNE_RIGHT_PAD = "<|finetune_right_pad_id|>";
export const START_HEADER = "<|start_header_id|>";
export const END_HEADER = "<|end_header_id|>";
export const EOM = "<|eom_id|>";
export const EOT = "<|eot_id|>";
export const PYTHON_TAG = "<|python_tag|>";

/** All 256 special-token names in id order. */
export function specialTokenNames(): string[] {
  const names: string[] = [...NAMED_SPECIAL_TOKENS];
  for (let i = 2; names.length < NUM_SPECIAL_TOKENS; i++) names.push(`<|reserved_special_token_${i}|>`);
  return names;
}

/** name → id for the 256 special tokens placed after `firstId` (= the number of BPE ranks). */
export function llama3SpecialTokens(firstId: number): Map<string, number> {
  return new Map(specialTokenNames().map((name, k) => [name, firstId + k]));
}
