// Where a command that writes a model folder (`herd quantize`, `herd lora merge`) puts it: `--out` checked
// against `--model` (never the model folder, inside it or holding it; an existing non-empty folder only
// with --force), the new folder written beside the target under a temporary name and swapped in whole,
// so a crash leaves either the old folder or the new one, never a half-written one.
import { existsSync, mkdirSync, readdirSync, realpathSync, renameSync, rmSync, statSync } from "node:fs";
import { basename, dirname, join, resolve, sep } from "node:path";
import { UsageError } from "../core/schema.js";

export function randomTag(): string {
  return Math.random().toString(36).slice(2, 10);
}

/** True when `inner` is `outer` or a path inside it (both real, absolute). */
function within(inner: string, outer: string): boolean {
  return inner === outer || inner.startsWith(outer.endsWith(sep) ? outer : outer + sep);
}

/**
 * The real path `--out` names (symlinks resolved, also of its nearest existing parent), checked: not the
 * model folder, not inside it, not holding it; a directory or nothing; holding files only with --force.
 */
export function outputTarget(model: string, out: string, force: boolean): string {
  const src = realpathSync(model);
  let target: string;
  if (existsSync(out)) target = realpathSync(out);
  else {
    // Resolve the nearest parent that exists, so a symlinked parent cannot hide the model folder.
    let head = resolve(out);
    const tail: string[] = [];
    while (!existsSync(head)) {
      tail.unshift(basename(head));
      head = dirname(head);
    }
    target = join(realpathSync(head), ...tail);
  }
  if (within(target, src))
    throw new UsageError(`--out ${out} is --model ${model} or inside it (${target}); choose another folder`);
  if (within(src, target))
    throw new UsageError(`--out ${out} holds --model ${model}; replacing it would delete the model`);
  if (existsSync(target)) {
    if (!statSync(target).isDirectory()) throw new UsageError(`--out ${out}: not a directory`);
    if (!force && readdirSync(target).length > 0)
      throw new UsageError(`--out ${out}: exists and is not empty; pass --force to replace it`);
  }
  return target;
}

/**
 * Put the finished folder `tmp` at `target`: an existing target is moved aside first and removed once
 * the new one is in place (a crash in between leaves it as \`.NAME.old-*\` beside the target).
 */
export function replaceDir(tmp: string, target: string): void {
  if (!existsSync(target)) {
    mkdirSync(dirname(target), { recursive: true });
    renameSync(tmp, target);
    return;
  }
  const old = join(dirname(target), `.${basename(target)}.old-${process.pid}-${randomTag()}`);
  renameSync(target, old);
  try {
    renameSync(tmp, target);
  } catch (e) {
    renameSync(old, target);
    throw e;
  }
  rmSync(old, { recursive: true, force: true });
}

/** Write a folder at `target` through `fill(tmp)` on a temporary folder beside it, then swap it in. */
export async function writeDirAtomic(target: string, fill: (tmp: string) => Promise<void>): Promise<void> {
  const tmp = join(dirname(target), `.${basename(target)}.tmp-${process.pid}-${randomTag()}`);
  try {
    await fill(tmp);
    replaceDir(tmp, target);
  } catch (e) {
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}
