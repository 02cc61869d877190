// Stop strings over streamed text: text that could be the start of a stop string is held back until it
// is known not to be one, and the stop string itself is never released (as src/generate/generate.ts does).

export class StopMatcher {
  private held = "";
  constructor(private readonly stops: readonly string[]) {}

  /** The text safe to release now, and whether a stop string was completed (then nothing follows). */
  push(text: string): { text: string; stopped: boolean } {
    if (this.stops.length === 0) return { text, stopped: false };
    this.held += text;
    let at = -1;
    for (const s of this.stops) {
      const i = this.held.indexOf(s);
      if (i >= 0 && (at < 0 || i < at)) at = i;
    }
    if (at >= 0) {
      const out = this.held.slice(0, at);
      this.held = "";
      return { text: out, stopped: true };
    }
    let keep = 0;
    for (const s of this.stops)
      for (let n = Math.min(s.length - 1, this.held.length); n > keep; n--)
        if (this.held.endsWith(s.slice(0, n))) {
          keep = n;
          break;
        }
    const out = this.held.slice(0, this.held.length - keep);
    this.held = this.held.slice(this.held.length - keep);
    return { text: out, stopped: false };
  }

  flush(): string {
    const out = this.held;
    this.held = "";
    return out;
  }
}
