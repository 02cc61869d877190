// Text helpers shared by the filters: whitespace words, lines and paragraphs.

/** Whitespace-separated words. */
export function words(text: string): string[] {
  return text.split(/\s+/).filter((w) => w.length > 0);
}

export function lines(text: string): string[] {
  return text.split(/\n+/).filter((l) => l.trim().length > 0);
}

export function paragraphs(text: string): string[] {
  return text.split(/\n\s*\n+/).filter((p) => p.trim().length > 0);
}
