// Reading files that must be regular files: opened without blocking and checked with fstat, so a FIFO,
// socket, device or directory in place of a checkpoint, config or tokenizer file is an error naming the
// path, not a read that waits forever (or never ends); files read whole are size-checked first.
import { closeSync, constants, fstatSync, openSync, readFileSync, type Stats } from "node:fs";

export function kindOf(st: Stats): string {
  if (st.isDirectory()) return "a directory";
  if (st.isFIFO()) return "a FIFO (named pipe)";
  if (st.isSocket()) return "a socket";
  if (st.isCharacterDevice()) return "a character device";
  if (st.isBlockDevice()) return "a block device";
  return "something";
}

/**
 * Open `path` for reading only if it is a regular file (O_NONBLOCK: opening a FIFO does not wait for a
 * writer; it has no effect on reads of a regular file). Returns the descriptor and the file's size.
 */
export function openRegular(path: string): { fd: number; size: number } {
  const fd = openSync(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  const st = fstatSync(fd);
  if (!st.isFile()) {
    closeSync(fd);
    throw new Error(`${path}: ${kindOf(st)}, not a regular file`);
  }
  return { fd, size: st.size };
}

/** Largest config, params or index JSON read (405B's index is ~100 KB). */
export const MAX_JSON_BYTES = 16 << 20;

/** The whole of a regular file of at most `maxBytes` (checked before reading; config files by default). */
export function readRegularFile(path: string, maxBytes: number = MAX_JSON_BYTES): Buffer {
  const { fd, size } = openRegular(path);
  try {
    if (size > maxBytes)
      throw new Error(`${path}: ${size} bytes, more than the ${maxBytes / 2 ** 20} MiB such a file may hold`);
    return readFileSync(fd);
  } finally {
    closeSync(fd);
  }
}
