// The running Polyak average of the annealing stage (spec §6.3: the final model is the average of
// checkpoints taken during annealing). Instead of keeping every sampled checkpoint to average at the
// end, the trainer folds each sample into an f32 running mean, mean += (w − mean) / k, and saves it
// (polyak.safetensors, the count in its metadata) inside every checkpoint folder, so a run killed during
// annealing resumes with the same mean and ends with the same final weights. `averageCheckpoints`
// (checkpoint.ts) is the offline reference the tests compare it with.
import { SafetensorsFile, writeSafetensors } from "../model/checkpoint/safetensors.js";
import { fromArray, type Tensor } from "../tensor/tensor.js";

export const POLYAK_STATE = "polyak.safetensors";

export class PolyakAverage {
  /** Samples folded in so far. */
  count = 0;
  readonly mean = new Map<string, Tensor>();

  /** Fold the current weights in as one more sample. */
  add(weights: ReadonlyMap<string, Tensor>): void {
    const k = ++this.count;
    for (const [name, w] of weights) {
      let m = this.mean.get(name);
      if (!m) {
        m = fromArray(new Float32Array(w.size), [...w.shape]).keep();
        m.name = name;
        this.mean.set(name, m);
      }
      const md = m.data;
      const wd = w.data;
      for (let i = 0; i < md.length; i++) md[i] = md[i]! + (wd[i]! - md[i]!) / k;
    }
  }

  /** Write the mean and count to `path` (called inside a checkpoint's temporary folder). */
  async save(path: string): Promise<void> {
    await writeSafetensors(path, this.mean, { metadata: { format: "pt", count: String(this.count) } });
  }

  /** Restore what `save` wrote; `names` are the model's weights, each of which must be present. */
  load(path: string, names: Iterable<string>): void {
    this.dispose();
    const f = SafetensorsFile.open(path);
    try {
      const have = new Set(f.names());
      for (const name of names) {
        if (!have.has(name)) throw new Error(`${path}: averaged weight '${name}' is missing`);
        const t = f.read(name).keep();
        t.name = name;
        this.mean.set(name, t);
      }
      const count = Number(f.header.metadata?.count);
      if (!Number.isInteger(count) || count < 1) throw new Error(`${path}: metadata 'count' missing or bad`);
      this.count = count;
    } finally {
      f.close();
    }
  }

  dispose(): void {
    for (const t of this.mean.values()) t.dispose();
    this.mean.clear();
    this.count = 0;
  }
}
