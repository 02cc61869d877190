// Sentence boundaries in streamed text, so the server can run the guard on an assistant reply at each one
// before releasing it: a boundary follows a run of sentence-ending punctuation (. ! ? … and their CJK
// forms, with closing quotes or brackets after them) once whitespace follows it, or a line break. Only
// text that cannot change is reported: "3.14" is no boundary, and "Hi." is one only when a space comes.
const BOUNDARY = /[.!?…。！？]+["'”’)\]]*(?=\s)|\n/gu;

export class SentenceBoundaries {
  private text = "";
  private last = 0;

  /** Adds streamed text; returns the length of the text up to its newest boundary, or null if none is new. */
  push(delta: string): number | null {
    const from = Math.max(0, this.text.length - 8); // a boundary may straddle the previous push
    this.text += delta;
    let end = -1;
    BOUNDARY.lastIndex = from;
    for (let m = BOUNDARY.exec(this.text); m; m = BOUNDARY.exec(this.text)) end = m.index + m[0].length;
    if (end <= this.last) return null;
    this.last = end;
    return end;
  }

  /** The whole text so far. */
  get value(): string {
    return this.text;
  }
}
