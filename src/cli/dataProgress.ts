// Progress for `herd data` commands: one rewritten line on a terminal (stage, tasks, documents, MB/s,
// ETA from the share of tasks done), plain log lines elsewhere (at most one each 5 s, and at each stage).
import type { RunProgress } from "../data/pipeline/run.js";
import { formatDuration } from "./duration.js";

export function progressPrinter(stream: NodeJS.WriteStream = process.stderr): {
  onProgress: (p: RunProgress) => void;
  done: () => void;
} {
  const tty = stream.isTTY === true;
  let stageStart = Date.now();
  let stage = "";
  let lastLog = 0;
  let shown = false;
  const onProgress = (p: RunProgress) => {
    const now = Date.now();
    if (p.stage !== stage) {
      stage = p.stage;
      stageStart = now;
      if (!tty) stream.write(`[${p.stageIndex + 1}/${p.stages}] ${p.stage}: ${p.tasks} task(s)\n`);
    }
    const secs = Math.max(1e-3, (now - stageStart) / 1000);
    const mbs = p.bytes / 1e6 / secs;
    const frac = p.tasks > 0 ? p.tasksDone / p.tasks : 1;
    const eta = frac > 0 && frac < 1 ? formatDuration((secs / frac) * (1 - frac)) : "-";
    const line = `[${p.stageIndex + 1}/${p.stages}] ${p.stage} tasks ${p.tasksDone}/${p.tasks} docs ${p.docs} ${mbs.toFixed(1)} MB/s ETA ${eta}`;
    if (tty) {
      stream.write(
        `\r${line.slice(0, (stream.columns ?? 120) - 1).padEnd(Math.min(100, (stream.columns ?? 120) - 1))}`,
      );
      shown = true;
    } else if (now - lastLog > 5000) {
      lastLog = now;
      stream.write(`${line}\n`);
    }
  };
  return {
    onProgress,
    done: () => {
      if (tty && shown) stream.write("\n");
    },
  };
}
