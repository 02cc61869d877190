// Model averaging (spec §7.2: "at each RM, SFT, or DPO stage, we average models obtained from experiments
// using various versions of data or hyperparameters"): `herd average` and the rounds' average stage write
// model/average.ts's weighted mean of checkpoints of one architecture (uniform by default) as a new
// checkpoint folder, atomically, with the first checkpoint's tokenizer and generation files beside it.
import { averageWeights } from "../model/average.js";
import { writeHFCheckpoint } from "../model/checkpoint/hf.js";
import { copySideFiles } from "../model/sideFiles.js";

export { normaliseWeights } from "../model/average.js";

/** Average `dirs` (HF checkpoints) with `weights` into `output`; returns the tensor count. */
export async function averageModels(
  dirs: readonly string[],
  output: string,
  weights?: readonly number[],
): Promise<number> {
  const { config, tensors } = await averageWeights(dirs, weights);
  try {
    await writeHFCheckpoint(output, config, tensors);
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
  copySideFiles(dirs[0]!, output);
  return tensors.size;
}
