// A pool worker thread: loads the run folder's pipeline and plan once, then runs the tasks it is sent
// ({stage, task}), posting progress and each result back to the executor.
import { parentPort, workerData } from "node:worker_threads";
import { readJson } from "../files.js";
import { type PipelineConfig, validatePipeline } from "./config.js";
import { type Plan, paths } from "./plan.js";
import { runTask } from "./task.js";

const { runDir } = workerData as { runDir: string };
const config: PipelineConfig = validatePipeline(readJson(paths.pipeline(runDir)));
const plan = readJson<Plan>(paths.plan(runDir));
parentPort!.on("message", (m: { stage: number; task: number }) => {
  runTask(runDir, config, plan, m.stage, m.task, (p) =>
    parentPort!.postMessage({ type: "progress", ...p }),
  ).then(
    (stats) => parentPort!.postMessage({ type: "done", stats }),
    (err: unknown) =>
      parentPort!.postMessage({
        type: "error",
        message: err instanceof Error ? (err.stack ?? err.message) : String(err),
      }),
  );
});
