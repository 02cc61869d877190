// The block interface: a block takes documents one at a time and keeps, changes, splits or drops each,
// giving a reason for every drop. `BlockStats` counts documents and UTF-8 bytes in and out of a block and
// what it dropped by reason; these counts are the funnel in a run's report.
import { type Document, textBytes } from "./document.js";

/** What a block returns for one document: the document (maybe changed), several, or a drop reason. */
export type BlockResult = Document | Document[] | { drop: string };

export interface DocBlock {
  /** The step's name in the funnel, e.g. "gopherRepetition". */
  readonly name: string;
  process(doc: Document): BlockResult | Promise<BlockResult>;
  /** Called once after the last document (flush side files). */
  finish?(): Promise<void> | void;
}

export interface DropCount {
  docs: number;
  bytes: number;
}

export interface BlockStatsJson {
  name: string;
  docsIn: number;
  bytesIn: number;
  docsOut: number;
  bytesOut: number;
  dropped: Record<string, DropCount>;
}

export class BlockStats {
  docsIn = 0;
  bytesIn = 0;
  docsOut = 0;
  bytesOut = 0;
  readonly dropped: Record<string, DropCount> = {};
  constructor(readonly name: string) {}

  in(doc: Document): void {
    this.docsIn++;
    this.bytesIn += textBytes(doc.text);
  }
  out(doc: Document): void {
    this.docsOut++;
    this.bytesOut += textBytes(doc.text);
  }
  drop(reason: string, doc: Document): void {
    const d = (this.dropped[reason] ??= { docs: 0, bytes: 0 });
    d.docs++;
    d.bytes += textBytes(doc.text);
  }
  toJSON(): BlockStatsJson {
    const { name, docsIn, bytesIn, docsOut, bytesOut, dropped } = this;
    return { name, docsIn, bytesIn, docsOut, bytesOut, dropped: { ...dropped } };
  }
  /** Adds another task's counts for the same block. */
  static merge(a: BlockStatsJson, b: BlockStatsJson): BlockStatsJson {
    const dropped: Record<string, DropCount> = {};
    for (const src of [a.dropped, b.dropped])
      for (const [k, v] of Object.entries(src)) {
        const d = (dropped[k] ??= { docs: 0, bytes: 0 });
        d.docs += v.docs;
        d.bytes += v.bytes;
      }
    return {
      name: a.name,
      docsIn: a.docsIn + b.docsIn,
      bytesIn: a.bytesIn + b.bytesIn,
      docsOut: a.docsOut + b.docsOut,
      bytesOut: a.bytesOut + b.bytesOut,
      dropped,
    };
  }
}

/** Called for each dropped document (the pipeline may write them beside the kept ones). */
export type DropSink = (doc: Document, reason: string) => void;

/**
 * Runs one block over a stream, counting into `stats`. Dropped documents go to `onDrop` if given.
 */
export async function* applyBlock(
  block: DocBlock,
  docs: AsyncIterable<Document> | Iterable<Document>,
  stats: BlockStats = new BlockStats(block.name),
  onDrop?: DropSink,
): AsyncGenerator<Document> {
  for await (const doc of docs) {
    stats.in(doc);
    let r = block.process(doc);
    if (r instanceof Promise) r = await r;
    if (Array.isArray(r)) {
      for (const d of r) {
        stats.out(d);
        yield d;
      }
    } else if ("drop" in r) {
      stats.drop(r.drop, doc);
      onDrop?.(doc, r.drop);
    } else {
      stats.out(r);
      yield r;
    }
  }
  await block.finish?.();
}

/** A block from a function; `fn` returns a string to drop the document with that reason. */
export function mapBlock(name: string, fn: (doc: Document) => Document | string): DocBlock {
  return {
    name,
    process(doc) {
      const r = fn(doc);
      return typeof r === "string" ? { drop: r } : r;
    },
  };
}

/** Runs a chain of blocks in memory and returns the survivors with each block's stats (for tests, tools). */
export async function runBlocks(
  blocks: DocBlock[],
  docs: Iterable<Document> | AsyncIterable<Document>,
): Promise<{ docs: Document[]; stats: BlockStatsJson[] }> {
  const stats = blocks.map((b) => new BlockStats(b.name));
  let stream: AsyncIterable<Document> | Iterable<Document> = docs;
  blocks.forEach((b, i) => {
    stream = applyBlock(b, stream, stats[i]);
  });
  const out: Document[] = [];
  for await (const d of stream) out.push(d);
  return { docs: out, stats: stats.map((s) => s.toJSON()) };
}
