// Streaming decode: ids arrive one at a time (during generation) and text leaves as soon as it is
// complete. A UTF-8 character split across tokens (emoji, CJK often are) is held back until its last
// byte arrives, so no half character is ever emitted; the concatenated output equals decoding all the
// ids at once (invalid bytes become U+FFFD in both).

export class StreamDecoder {
  private readonly decoder = new TextDecoder("utf-8");

  constructor(private readonly bytesOf: (id: number) => Uint8Array) {}

  /** Adds one id; returns the text completed by it (often "", while a character is incomplete). */
  push(id: number): string {
    return this.decoder.decode(this.bytesOf(id), { stream: true });
  }

  /** Adds several ids; returns the text they complete. */
  pushAll(ids: Iterable<number>): string {
    let s = "";
    for (const id of ids) s += this.push(id);
    return s;
  }

  /** Ends the stream: bytes of an unfinished character come out as U+FFFD. */
  flush(): string {
    return this.decoder.decode();
  }
}
