// The wasm backend's allocator: hands out byte ranges of one shared WasmMemory, which the kernels
// address by byte offset and JS sees as Float32Array views. A first-fit free list kept sorted by
// address, with neighbours coalesced on release; the memory grows (in steps of at least 1/8 of its size,
// so growth is amortised) when no free range fits, up to the 4 GiB a 32-bit memory can address.
// Everything below `base` belongs to the AssemblyScript module's static data and is never handed out.
// Ranges are 64-byte aligned (a cache line, and enough for any v128 access).

import type { WasmMemory } from "./kernels.js";

const PAGE = 65536;
const ALIGN = 64;
const MAX_BYTES = 65536 * PAGE;

export class Heap {
  readonly memory: WasmMemory;
  private readonly base: number;
  // Free ranges, sorted by offset, never adjacent (adjacent ones are merged).
  private readonly freeOff: number[] = [];
  private readonly freeLen: number[] = [];
  // Memory at or above `clean` has never been handed out, so it is still zero (memory grows zeroed).
  private clean: number;

  constructor(memory: WasmMemory, base: number) {
    this.memory = memory;
    this.base = roundUp(base, ALIGN);
    this.clean = this.base;
    const size = memory.buffer.byteLength;
    if (size > this.base) this.insertFree(this.base, size - this.base);
  }

  /** Current size of the memory in bytes. */
  size(): number {
    return this.memory.buffer.byteLength;
  }

  /** Start of a free, zero-filled range of at least `bytes` bytes (rounded up to 64). */
  alloc(bytes: number): number {
    const len = roundUp(Math.max(bytes, 1), ALIGN);
    let i = this.findFit(len);
    if (i < 0) {
      this.grow(len);
      i = this.findFit(len);
      if (i < 0) throw new Error(`wasm heap: no room for ${bytes} bytes after growing`);
    }
    const off = this.freeOff[i]!;
    if (this.freeLen[i] === len) {
      this.freeOff.splice(i, 1);
      this.freeLen.splice(i, 1);
    } else {
      this.freeOff[i] = off + len;
      this.freeLen[i]! -= len;
    }
    if (off < this.clean) new Uint8Array(this.memory.buffer, off, Math.min(len, this.clean - off)).fill(0);
    this.clean = Math.max(this.clean, off + len);
    return off;
  }

  /** Give back a range from alloc() (same byte count as requested). */
  release(off: number, bytes: number): void {
    this.insertFree(off, roundUp(Math.max(bytes, 1), ALIGN));
  }

  /** Bytes in free ranges (for tests). */
  freeBytes(): number {
    let s = 0;
    for (const l of this.freeLen) s += l;
    return s;
  }

  private findFit(len: number): number {
    for (let i = 0; i < this.freeLen.length; i++) if (this.freeLen[i]! >= len) return i;
    return -1;
  }

  // Grow so that a range of len bytes fits at the end (extending a free range that reaches the end).
  private grow(len: number): void {
    const size = this.size();
    const last = this.freeOff.length - 1;
    const tail = last >= 0 && this.freeOff[last]! + this.freeLen[last]! === size ? this.freeLen[last]! : 0;
    const need = len - tail;
    const want = Math.min(MAX_BYTES - size, Math.max(need, size / 8, 16 * 1024 * 1024));
    if (need > MAX_BYTES - size) {
      throw new Error(`wasm heap: out of memory (need ${len} bytes more, ${size} of ${MAX_BYTES} in use)`);
    }
    const pages = Math.ceil(want / PAGE);
    this.memory.grow(pages);
    this.insertFree(size, pages * PAGE);
  }

  private insertFree(off: number, len: number): void {
    // Binary search for the first free range after off.
    let lo = 0;
    let hi = this.freeOff.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.freeOff[mid]! < off) lo = mid + 1;
      else hi = mid;
    }
    const prev = lo - 1;
    if (prev >= 0 && this.freeOff[prev]! + this.freeLen[prev]! > off)
      throw new Error(`wasm heap: double free at ${off}`);
    if (lo < this.freeOff.length && off + len > this.freeOff[lo]!)
      throw new Error(`wasm heap: double free at ${off}`);
    const joinPrev = prev >= 0 && this.freeOff[prev]! + this.freeLen[prev]! === off;
    const joinNext = lo < this.freeOff.length && off + len === this.freeOff[lo]!;
    if (joinPrev && joinNext) {
      this.freeLen[prev]! += len + this.freeLen[lo]!;
      this.freeOff.splice(lo, 1);
      this.freeLen.splice(lo, 1);
    } else if (joinPrev) {
      this.freeLen[prev]! += len;
    } else if (joinNext) {
      this.freeOff[lo] = off;
      this.freeLen[lo]! += len;
    } else {
      this.freeOff.splice(lo, 0, off);
      this.freeLen.splice(lo, 0, len);
    }
  }
}

function roundUp(x: number, a: number): number {
  return Math.ceil(x / a) * a;
}
