// The files beside a checkpoint's weights that a model folder derived from it needs too (tokenizers,
// generation settings): what `herd quantize`, `herd lora merge`, `herd average` and the post-training
// trainers copy from the model they start from into the folder they write. Each is read as a regular,
// size-checked file and written atomically.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic } from "../io/atomic.js";
import { readRegularFile } from "../io/regular.js";

export const SIDE_FILES = [
  "tokenizer.model",
  "vocab.json",
  "tokenizer.json",
  "tokenizer_config.json",
  "generation_config.json",
] as const;

/** Largest side file copied (Llama 3's tokenizer.json is 9 MB). */
export const MAX_SIDE_FILE_BYTES = 256 << 20;

/** Copy the side files `from` has into `to` (an existing folder); returns the names copied. */
export function copySideFiles(from: string, to: string): string[] {
  const copied: string[] = [];
  for (const f of SIDE_FILES) {
    const src = join(from, f);
    if (!existsSync(src)) continue;
    writeFileAtomic(join(to, f), readRegularFile(src, MAX_SIDE_FILE_BYTES));
    copied.push(f);
  }
  return copied;
}
