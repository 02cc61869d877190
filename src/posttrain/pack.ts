// Packing sequences into rows of a fixed length for one forward (spec §2.7's document mask): sequences
// are placed in the order given, each in the current row when it fits, else in a new row; every
// sequence is its own document (attention stays inside it, RoPE positions restart at 0), and the rest of
// a row is padding (id 0, its own document, no target). A token marked `trained` gets a target at the
// position before it (the next-token prediction that yields it); every other target is −100.
export interface Sequence {
  ids: Int32Array;
  /** 1 where the token is trained (needs a target); token 0 never is. */
  trained: Uint8Array;
}

export interface PackedRows {
  ids: Int32Array;
  targets: Int32Array;
  docIds: Int32Array;
  batch: number;
  seqLen: number;
  /** Flat index of each sequence's first token (in input order). */
  starts: number[];
}

/** Row index of every sequence when packed into rows of `seqLen` (first fit in order). */
export function packRows(lengths: readonly number[], seqLen: number): number[] {
  const rows: number[] = [];
  let row = -1;
  let used = seqLen;
  for (const n of lengths) {
    if (n > seqLen) throw new Error(`pack: a sequence of ${n} tokens does not fit rows of ${seqLen}`);
    if (used + n > seqLen) {
      row++;
      used = 0;
    }
    rows.push(row);
    used += n;
  }
  return rows;
}

/** Pack `seqs` into rows of `seqLen` (as many rows as needed). */
export function pack(seqs: readonly Sequence[], seqLen: number): PackedRows {
  const rowOf = packRows(
    seqs.map((s) => s.ids.length),
    seqLen,
  );
  const batch = (rowOf.at(-1) ?? -1) + 1;
  const ids = new Int32Array(batch * seqLen);
  const targets = new Int32Array(batch * seqLen).fill(-100);
  const docIds = new Int32Array(batch * seqLen).fill(-1);
  const used = new Array<number>(batch).fill(0);
  const docs = new Array<number>(batch).fill(0);
  const starts: number[] = [];
  seqs.forEach((s, i) => {
    const row = rowOf[i]!;
    const start = row * seqLen + used[row]!;
    starts.push(start);
    ids.set(s.ids, start);
    docIds.fill(docs[row]!++, start, start + s.ids.length);
    for (let j = 1; j < s.ids.length; j++) if (s.trained[j]) targets[start + j - 1] = s.ids[j]!;
    used[row]! += s.ids.length;
  });
  for (let r = 0; r < batch; r++) docIds.fill(docs[r]!, r * seqLen + used[r]!, (r + 1) * seqLen);
  return { ids, targets, docIds, batch, seqLen, starts };
}
