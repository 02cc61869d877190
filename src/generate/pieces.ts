// Text → ids for a SentencePiece BPE piece list with scores, such as llama2.c's `vocab.json` beside
// stories260K (the encoding half of codec.ts's PieceVocab, used by `herd generate --prompt` and
// `herd perplexity`). The rule is llama2.c's `encode`:
// prepend the dummy-prefix space, look up each UTF-8 character as a piece (bytes without a piece become
// their `<0xXX>` byte pieces), then repeatedly merge the adjacent pair whose concatenation is a piece
// with the highest score (the leftmost on ties) until no pair merges. No BOS/EOS is added.
export class PieceEncoder {
  private readonly ids = new Map<string, number>();
  private readonly byteIds: number[] = [];

  constructor(
    private readonly pieces: readonly string[],
    private readonly scores: readonly number[],
  ) {
    pieces.forEach((p, id) => {
      if (!this.ids.has(p)) this.ids.set(p, id);
      const m = /^<0x([0-9A-Fa-f]{2})>$/.exec(p);
      if (m) this.byteIds[Number.parseInt(m[1]!, 16)] = id;
    });
  }

  encode(text: string): number[] {
    if (text === "") return [];
    const enc = new TextEncoder();
    const toks: number[] = [];
    for (const ch of ` ${text}`) {
      const id = this.ids.get(ch);
      if (id !== undefined) toks.push(id);
      else
        for (const b of enc.encode(ch)) {
          const bid = this.byteIds[b];
          if (bid === undefined) throw new Error(`PieceEncoder: no piece for byte 0x${b.toString(16)}`);
          toks.push(bid);
        }
    }
    // No piece holds a newline (it is the byte piece <0x0A>), so no merge crosses one: merging each line
    // on its own gives the same ids as merging the whole text, in time quadratic per line only.
    const nl = this.byteIds[10];
    const out: number[] = [];
    let start = 0;
    for (let i = 0; i <= toks.length; i++)
      if (i === toks.length || toks[i] === nl) {
        out.push(...this.merge(toks.slice(start, i)));
        if (i < toks.length) out.push(toks[i]!);
        start = i + 1;
      }
    return out;
  }

  private merge(toks: number[]): number[] {
    for (;;) {
      let best = -1;
      let bestScore = Number.NEGATIVE_INFINITY;
      let bestId = -1;
      for (let i = 0; i + 1 < toks.length; i++) {
        const id = this.ids.get(this.pieces[toks[i]!]! + this.pieces[toks[i + 1]!]!);
        if (id !== undefined && this.scores[id]! > bestScore) {
          best = i;
          bestScore = this.scores[id]!;
          bestId = id;
        }
      }
      if (best < 0) return toks;
      toks.splice(best, 2, bestId);
    }
  }
}
