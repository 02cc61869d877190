// Model-based quality filtering (the paper's §3.1.1, in the Llama 1 fastText style): a linear classifier
// over hashed word n-grams, trained here from positive and negative example documents. As in fastText's
// supervised mode, a document is the mean of its features' embedding rows (dim `dim`), and a logistic
// output scores it; training is SGD with a linearly decaying learning rate, in a fixed order from the
// seed so the same examples give the same model. `quality` scores each document into meta.quality and
// drops those below `threshold`.
import { readFileSync } from "node:fs";
import { uniformU32 } from "../core/rng.js";
import { writeAtomic } from "./files.js";
import { fmix32, hashString } from "./hash.js";
import { defineStep } from "./pipeline/types.js";

export interface QualityOptions {
  dim: number;
  buckets: number;
  wordNgrams: number;
  epochs: number;
  lr: number;
  seed: number;
}

export const QUALITY_DEFAULTS: QualityOptions = {
  dim: 16,
  buckets: 1 << 18,
  wordNgrams: 2,
  epochs: 10,
  lr: 1,
  seed: 0,
};

/** Hashed feature ids of a text: lower-cased words and word n-grams up to `n`, into `buckets`. */
export function features(text: string, buckets: number, n: number): Int32Array {
  const w = (text.toLowerCase().match(/[\p{L}\p{N}]+|[^\s\p{L}\p{N}]/gu) ?? []).map((x) => hashString(x));
  const out: number[] = [];
  for (let i = 0; i < w.length; i++) {
    let h = w[i]!;
    out.push(h % buckets);
    for (let k = 1; k < n && i + k < w.length; k++) {
      h = fmix32(Math.imul(h, 116049371) + w[i + k]!);
      out.push(h % buckets);
    }
  }
  return Int32Array.from(out);
}

export class QualityModel {
  constructor(
    readonly opts: QualityOptions,
    readonly emb: Float32Array,
    readonly out: Float32Array,
    public bias = 0,
  ) {}

  static init(opts: QualityOptions): QualityModel {
    const next = uniformU32(opts.seed ^ 0x51ed);
    const emb = new Float32Array(opts.buckets * opts.dim);
    const scale = 1 / opts.dim;
    for (let i = 0; i < emb.length; i++) emb[i] = (next() / 4294967296 - 0.5) * 2 * scale;
    return new QualityModel(opts, emb, new Float32Array(opts.dim));
  }

  private hidden(f: Int32Array, h: Float32Array): void {
    h.fill(0);
    const d = this.opts.dim;
    for (let i = 0; i < f.length; i++) {
      const o = f[i]! * d;
      for (let j = 0; j < d; j++) h[j]! += this.emb[o + j]!;
    }
    if (f.length > 0) for (let j = 0; j < d; j++) h[j]! /= f.length;
  }

  /** Probability that the text is like the positive examples. */
  score(text: string): number {
    const f = features(text, this.opts.buckets, this.opts.wordNgrams);
    const h = new Float32Array(this.opts.dim);
    this.hidden(f, h);
    let z = this.bias;
    for (let j = 0; j < h.length; j++) z += h[j]! * this.out[j]!;
    return 1 / (1 + Math.exp(-z));
  }

  /** Trains on labelled texts (1 = positive); returns the mean log loss of the last epoch. */
  static train(
    examples: { text: string; label: 0 | 1 }[],
    opts: QualityOptions = QUALITY_DEFAULTS,
  ): { model: QualityModel; loss: number } {
    const m = QualityModel.init(opts);
    const feats = examples.map((e) => features(e.text, opts.buckets, opts.wordNgrams));
    const next = uniformU32(opts.seed);
    const order = examples.map((_, i) => i);
    const d = opts.dim;
    const h = new Float32Array(d);
    const gradH = new Float32Array(d);
    const steps = opts.epochs * examples.length;
    let step = 0;
    let loss = 0;
    for (let ep = 0; ep < opts.epochs; ep++) {
      for (let i = order.length - 1; i > 0; i--) {
        const j = next() % (i + 1);
        [order[i], order[j]] = [order[j]!, order[i]!];
      }
      loss = 0;
      for (const idx of order) {
        const lr = opts.lr * (1 - step++ / steps);
        const f = feats[idx]!;
        if (f.length === 0) continue;
        m.hidden(f, h);
        let z = m.bias;
        for (let j = 0; j < d; j++) z += h[j]! * m.out[j]!;
        const p = 1 / (1 + Math.exp(-z));
        const y = examples[idx]!.label;
        loss -= y === 1 ? Math.log(Math.max(p, 1e-12)) : Math.log(Math.max(1 - p, 1e-12));
        const g = (y - p) * lr;
        for (let j = 0; j < d; j++) {
          gradH[j] = g * m.out[j]!;
          m.out[j]! += g * h[j]!;
        }
        m.bias += g;
        const inv = 1 / f.length;
        for (let i = 0; i < f.length; i++) {
          const o = f[i]! * d;
          for (let j = 0; j < d; j++) m.emb[o + j]! += gradH[j]! * inv;
        }
      }
      loss /= Math.max(1, examples.length);
    }
    return { model: m, loss };
  }

  /** File: "HERDQM1\n", a JSON header line, then the embedding and output weights as f32 LE (4-aligned). */
  save(path: string): void {
    const header = Buffer.from(`HERDQM1\n${JSON.stringify({ ...this.opts, bias: this.bias })}\n`);
    const padLen = (4 - (header.length % 4)) % 4;
    const head = Buffer.concat([header, Buffer.alloc(padLen, 0x20)]);
    const body = Buffer.concat([
      Buffer.from(this.emb.buffer, this.emb.byteOffset, this.emb.byteLength),
      Buffer.from(this.out.buffer, this.out.byteOffset, this.out.byteLength),
    ]);
    writeAtomic(path, Buffer.concat([head, body]));
  }

  static load(path: string): QualityModel {
    const b = readFileSync(path);
    if (b.subarray(0, 8).toString() !== "HERDQM1\n") throw new Error(`${path}: not a herd quality model`);
    const nl = b.indexOf(10, 8);
    const h = JSON.parse(b.subarray(8, nl).toString()) as QualityOptions & { bias: number };
    let off = nl + 1;
    while (off % 4 !== 0) off++;
    const floats = new Float32Array(b.buffer.slice(b.byteOffset + off, b.byteOffset + b.length));
    if (floats.length !== h.buckets * h.dim + h.dim)
      throw new Error(`${path}: size does not match its header`);
    const { bias, ...opts } = h;
    return new QualityModel(
      opts,
      floats.subarray(0, h.buckets * h.dim),
      floats.subarray(h.buckets * h.dim),
      bias,
    );
  }
}

// Models loaded in this thread, by path (a task is often smaller than the model).
const loaded = new Map<string, QualityModel>();

export const qualityStep = defineStep<{ model: string; threshold: number }>({
  type: "quality",
  cli: "quality",
  summary: "score documents with a trained quality classifier (herd data quality-train) and keep the good",
  params: {
    model: { type: "string", default: "", doc: "model file written by herd data quality-train (required)" },
    threshold: {
      type: "number",
      default: 0.5,
      min: 0,
      max: 1,
      doc: "lowest score kept (0 keeps all, only scores)",
    },
  },
  block: (p) => {
    if (!p.model) throw new Error("quality: set model to a file from `herd data quality-train`");
    let m = loaded.get(p.model);
    if (!m) loaded.set(p.model, (m = QualityModel.load(p.model)));
    return {
      name: "quality",
      process(doc) {
        const s = m.score(doc.text);
        doc.meta.quality = Math.round(s * 10000) / 10000;
        return s < p.threshold ? { drop: "low quality score" } : doc;
      },
    };
  },
});
