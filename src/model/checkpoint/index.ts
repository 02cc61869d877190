// Checkpoint formats in one import: HF directories (safetensors, sharded with an index), Meta directories
// (params.json + consolidated.NN.pth, PyTorch zip + pickle), and the Q/K RoPE-layout permutation.
export {
  expectTensor,
  HF_CONFIG,
  HF_INDEX,
  HF_SINGLE,
  hfShardName,
  readHFCheckpoint,
  writeHFCheckpoint,
} from "./hf.js";
export { hfToMetaName, metaToHFName, readMetaCheckpoint } from "./meta.js";
export { permuteQK, permuteRowsInPlace, unpermuteQK } from "./permute.js";
export {
  encodeSafetensorsHeader,
  openSafetensors,
  parseSafetensorsHeader,
  type ReadDtype,
  readSafetensors,
  readSafetensorsHeader,
  SAFETENSORS_DTYPE_BYTES,
  type SafetensorsEntry,
  SafetensorsFile,
  type SafetensorsHeader,
  type WriteSafetensorsOptions,
  writeSafetensors,
} from "./safetensors.js";
export { readTorchIndex, readTorchTensor, type TorchTensorEntry } from "./torch.js";
