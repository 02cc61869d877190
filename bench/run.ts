// `npm run bench [-- name ...]`: runs the benchmark suites under bench/ in one process, so every figure
// is printed beside a baseline measured in the same run. Suites: each bench/<name>.ts exports `run()`.
// Record the figures in bench/RESULTS.md with the machine they came from.

const suites: Record<string, () => Promise<{ run: () => Promise<void> }>> = {};

export function register(name: string, load: () => Promise<{ run: () => Promise<void> }>): void {
  suites[name] = load;
}

register("engine", () => import("./engine.js"));
register("tokenizer", () => import("./tokenizer.js"));
register("layers", () => import("./layers.js"));
register("model", () => import("./model.js"));
register("data", () => import("./data.js"));
register("train", () => import("./train.js"));
register("recompute", () => import("./recompute.js"));
register("quant", () => import("./quant.js"));
register("kquant", () => import("./kquant.js"));
register("lora", () => import("./lora.js"));
register("eval", () => import("./eval.js"));
register("rs", () => import("./rs.js"));
register("posttrain", () => import("./posttrain.js"));
register("structured", () => import("./structured.js"));
register("serve", () => import("./serve.js"));
register("llamacpp", () => import("./llamacpp.js"));

async function main(): Promise<void> {
  const wanted = process.argv.slice(2);
  for (const name of wanted)
    if (!suites[name])
      throw new Error(`bench: unknown suite '${name}' (have: ${Object.keys(suites).join(", ")})`);
  const names = wanted.length > 0 ? wanted : Object.keys(suites);
  for (const name of names) {
    console.log(`\n=== ${name} ===`);
    const mod = await suites[name]!();
    await mod.run();
  }
}

main().catch((err) => {
  console.error(err);
  process.exitCode = 1;
});
