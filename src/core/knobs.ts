// Every HERD_* environment knob, declared once as data (name, kind, default, what is allowed, one line of
// doc), read through knob(): process.env is parsed lazily, one knob at a time on its first read, and the
// value kept (reloadKnobs() makes the next reads look again: tests that change process.env call it).
// One rule for a bad value, everywhere: an error naming the variable, its value and what is allowed
// (`HERD_THREADS='abc': expected an integer from 1 to 256`); unset and empty both mean the default.
// docs/knobs.md's table is knobTable()'s output (test/core/knobs.test.ts checks it;
// `node scripts/readme-knobs.mjs` after `npm run build` rewrites it). Two knobs are read outside
// TypeScript as well: the native addon reads HERD_NATIVE_ISA and HERD_GEMM_BLOCKING with getenv when it
// loads (validated here first, by src/backends/native before the addon is loaded), and
// scripts/build-native.mjs, which runs before tsc, reads HERD_NATIVE itself (with the same rule).
// Bottom layer (src/core/): imports nothing from herd.

interface Base {
  /** One line for docs/knobs.md's table. */
  readonly doc: string;
  /** Who reads it: herd at run time, the build, the benchmarks. */
  readonly group: "run" | "testing" | "build" | "bench";
  /** The default as the table prints it, where the value alone does not say it. */
  readonly defaultDoc?: string;
}
type Spec =
  | (Base & {
      readonly kind: "int";
      readonly min: number;
      readonly max: number;
      readonly default: number | null;
    })
  | (Base & {
      readonly kind: "number";
      readonly min: number;
      readonly max: number;
      readonly default: number | null;
    })
  | (Base & { readonly kind: "flag"; readonly default: boolean })
  | (Base & { readonly kind: "enum"; readonly values: readonly string[]; readonly default: string | null })
  | (Base & {
      readonly kind: "list";
      readonly values: readonly string[];
      readonly default: readonly string[] | null;
    })
  | (Base & {
      readonly kind: "ints";
      /** The shape of the value, e.g. "mc,kc,nc": its parts are named, joined by `sep`. */
      readonly form: string;
      readonly sep: string;
      readonly min: number;
      readonly max: number;
      readonly default: null;
    })
  | (Base & { readonly kind: "string"; readonly default: string | null });

/** The knobs. Add one here (and nowhere else); docs/knobs.md's table follows from it. */
export const KNOBS = {
  HERD_BACKEND: {
    kind: "enum",
    values: ["js", "wasm", "native"],
    default: null,
    defaultDoc: "`native` when the addon loads, else `wasm`",
    group: "run",
    doc: "the backend: `js` (reference), `wasm` or `native` (the C++ addon, when it built)",
  },
  HERD_THREADS: {
    kind: "int",
    min: 1,
    max: 256,
    default: null,
    defaultDoc: "the number of cores",
    group: "run",
    doc: "threads for the wasm and native backends",
  },
  HERD_NATIVE_CACHE_MB: {
    kind: "int",
    min: 0,
    max: 1048576,
    default: 1024,
    group: "run",
    doc: "MiB of freed buffers the native backend keeps for reuse",
  },
  HERD_NATIVE_HUGEPAGES: {
    kind: "flag",
    default: true,
    group: "run",
    doc: "`0` keeps the native backend's large buffers (weights, KV cache) off the 2 MiB transparent hugepages it asks for",
  },
  HERD_NATIVE_PACK: {
    kind: "flag",
    default: true,
    group: "run",
    doc: "`0`: no packed copies of long-row bf16 matrices for the decode GEMV (saves their memory, costs speed)",
  },
  HERD_NATIVE_PACK_MB: {
    kind: "int",
    min: 0,
    max: 1048576,
    default: 2048,
    group: "run",
    doc: "MiB the native backend may spend on those packed copies",
  },
  HERD_NATIVE_INT8_DOT: {
    kind: "flag",
    default: true,
    group: "run",
    doc: "`0`: the native Q8_0/Q4_0 kernels dequantise the weights to f32 instead of quantising the activations to 8 bits for integer dot products (AVX2; for comparisons)",
  },
  HERD_FUSED_DECODE: {
    kind: "flag",
    default: true,
    group: "run",
    doc: "`0` runs a decode step op by op instead of replaying its captured graph in one native call (same logits; for comparisons)",
  },
  HERD_DEBUG: {
    kind: "flag",
    default: false,
    group: "run",
    doc: "`1` prints stack traces on errors",
  },
  HERD_NATIVE_ISA: {
    kind: "enum",
    values: ["generic", "avx2", "avx512", "best"],
    default: null,
    defaultDoc: "`best`: the best the CPU has",
    group: "testing",
    doc: "`generic` or `avx2` forces the native backend's portable or AVX2 kernels on a CPU that has more (read by the addon, native/herd.h)",
  },
  HERD_GEMM_BLOCKING: {
    kind: "ints",
    form: "mc,kc,nc",
    sep: ",",
    min: 1,
    max: 65536,
    default: null,
    defaultDoc: "from the CPU's caches",
    group: "testing",
    doc: "forces the native SGEMM's cache blocking, otherwise chosen at load from the cache sizes (sysfs, else CPUID: kc = the larger of L1d/(nr·4) and √(L2/4), mc = L2/2/(kc·4), nc = L3 share/2/(kc·4)); `herd info` prints the one chosen (read by the addon, native/herd.cc)",
  },
  HERD_DATA_CRASH: {
    kind: "ints",
    form: "STAGE:N",
    sep: ":",
    min: 0,
    max: 2 ** 31 - 1,
    default: null,
    defaultDoc: "off",
    group: "testing",
    doc: "kills the process (SIGKILL) once a task of shard stage STAGE has written N documents (the resume test)",
  },
  HERD_NATIVE: {
    kind: "flag",
    default: true,
    group: "build",
    doc: "`0` skips building the native addon during `npm ci` / `npm run build` (read by scripts/build-native.mjs)",
  },
  HERD_BENCH_PRESET: {
    kind: "string",
    default: "llama3.2-1b",
    group: "bench",
    doc: "the model of the decode, model and quant benchmarks",
  },
  HERD_BENCH_PRESET_TRAIN: {
    kind: "string",
    default: "small",
    group: "bench",
    doc: "the model of the train and recompute benchmarks",
  },
  HERD_BENCH_PROMPT: {
    kind: "int",
    min: 1,
    max: 1048576,
    default: null,
    defaultDoc: "model 512, decode and quant 32, rs and llamacpp 64",
    group: "bench",
    doc: "prompt tokens of the decode benchmarks",
  },
  HERD_BENCH_DECODE: {
    kind: "int",
    min: 1,
    max: 1048576,
    default: null,
    defaultDoc: "model 32, decode, quant and llamacpp 16, rs 32",
    group: "bench",
    doc: "decode steps of the decode benchmarks",
  },
  HERD_BENCH_REPEATS: {
    kind: "int",
    min: 1,
    max: 1000,
    default: 3,
    group: "bench",
    doc: "runs per child of the decode benchmarks (the best is kept)",
  },
  HERD_BENCH_KQUANT: {
    kind: "enum",
    values: ["all", "int8"],
    default: "all",
    group: "bench",
    doc: "`int8`: `bench kquant` runs only its Q8_0/Q4_0 int8-against-f32 comparison",
  },
  HERD_BENCH_THREADS: {
    kind: "int",
    min: 1,
    max: 256,
    default: 2,
    group: "bench",
    doc: "HERD_THREADS of the model and quant benchmarks' children",
  },
  HERD_BENCH_BACKENDS: {
    kind: "list",
    values: ["wasm", "native-ops", "native"],
    default: ["wasm", "native-ops", "native"],
    defaultDoc: "`wasm,native-ops,native`, those built",
    group: "bench",
    doc: "backends of the model benchmark, comma-separated (`native-ops`: native with HERD_FUSED_DECODE=0)",
  },
  HERD_BENCH_TRAIN: {
    kind: "flag",
    default: true,
    group: "bench",
    doc: "`0` skips the tokenizer benchmark's training run",
  },
  HERD_BENCH_TRAIN_SEQ: {
    kind: "int",
    min: 1,
    max: 1048576,
    default: 256,
    group: "bench",
    doc: "sequence length of the train benchmark",
  },
  HERD_BENCH_TRAIN_BATCH: {
    kind: "int",
    min: 1,
    max: 65536,
    default: 4,
    group: "bench",
    doc: "batch of the train benchmark",
  },
  HERD_BENCH_TRAIN_REPS: {
    kind: "int",
    min: 1,
    max: 1000,
    default: 5,
    group: "bench",
    doc: "timed steps of the train benchmark",
  },
  HERD_BENCH_LORA_PRESET: {
    kind: "string",
    default: "llama3.2-1b",
    group: "bench",
    doc: "the model shape of the LoRA benchmark (bf16 base, random weights)",
  },
  HERD_BENCH_LORA_SEQ: {
    kind: "int",
    min: 1,
    max: 1048576,
    default: 256,
    group: "bench",
    doc: "tokens per step of the LoRA benchmark",
  },
  HERD_BENCH_RECOMPUTE_SEQ: {
    kind: "int",
    min: 1,
    max: 1048576,
    default: 512,
    group: "bench",
    doc: "sequence length of the recompute benchmark",
  },
  HERD_BENCH_RECOMPUTE_BATCH: {
    kind: "int",
    min: 1,
    max: 65536,
    default: 4,
    group: "bench",
    doc: "batch of the recompute benchmark",
  },
  HERD_BENCH_RECOMPUTE_REPS: {
    kind: "int",
    min: 1,
    max: 1000,
    default: 4,
    group: "bench",
    doc: "timed steps of the recompute benchmark",
  },
  HERD_BENCH_RS_K: {
    kind: "int",
    min: 1,
    max: 1024,
    default: 16,
    group: "bench",
    doc: "samples per prompt of the rs benchmark",
  },
  HERD_BENCH_DATA_MB: {
    kind: "number",
    min: 0.001,
    max: 1048576,
    default: 20,
    group: "bench",
    doc: "corpus size of the data benchmark, in MB",
  },
} as const satisfies Record<string, Spec>;

export type KnobName = keyof typeof KNOBS;
type Parsed<S> = S extends { kind: "int" | "number" }
  ? number
  : S extends { kind: "flag" }
    ? boolean
    : S extends { kind: "enum"; values: readonly (infer V)[] }
      ? V
      : S extends { kind: "list"; values: readonly (infer V)[] }
        ? V[]
        : S extends { kind: "ints" }
          ? number[]
          : string;
/** A knob's value: its parsed type, or null where it has no default and is unset. */
export type KnobValue<N extends KnobName> =
  | Parsed<(typeof KNOBS)[N]>
  | ((typeof KNOBS)[N] extends { default: null } ? null : never);

const cache = new Map<KnobName, unknown>();

/** What a knob allows, in words (the tail of its error, and docs/knobs.md's "allowed" column). */
export function allowed(spec: Spec): string {
  switch (spec.kind) {
    case "int":
      return `an integer from ${spec.min} to ${spec.max}`;
    case "number":
      return `a number from ${spec.min} to ${spec.max}`;
    case "flag":
      return "0 or 1";
    case "enum":
      return `one of ${spec.values.join(", ")}`;
    case "list":
      return `a comma-separated list of ${spec.values.join(", ")}`;
    case "ints":
      return `${spec.form}, integers from ${spec.min} to ${spec.max}`;
    case "string":
      return "any text";
  }
}

/** Parse `raw` (non-empty) as `spec`, or throw the one error. */
function parse(name: string, spec: Spec, raw: string): unknown {
  const bad = () => new Error(`${name}='${raw}': expected ${allowed(spec)}`);
  const int = (s: string, min: number, max: number) => {
    if (!/^[+-]?\d+$/.test(s)) throw bad();
    const n = Number(s);
    if (n < min || n > max) throw bad();
    return n;
  };
  switch (spec.kind) {
    case "int":
      return int(raw, spec.min, spec.max);
    case "number": {
      const n = raw.trim() === "" ? Number.NaN : Number(raw);
      if (!Number.isFinite(n) || n < spec.min || n > spec.max) throw bad();
      return n;
    }
    case "flag":
      if (raw === "0") return false;
      if (raw === "1") return true;
      throw bad();
    case "enum":
      if (!spec.values.includes(raw)) throw bad();
      return raw;
    case "list": {
      const items = raw.split(",").filter((s) => s !== "");
      if (items.length === 0 || items.some((s) => !spec.values.includes(s))) throw bad();
      return items;
    }
    case "ints": {
      const parts = raw.split(spec.sep);
      if (parts.length !== spec.form.split(spec.sep).length) throw bad();
      return parts.map((p) => int(p, spec.min, spec.max));
    }
    case "string":
      return raw;
  }
}

/** The value of knob `name`: parsed from process.env on the first read, then kept (see reloadKnobs). */
export function knob<N extends KnobName>(name: N): KnobValue<N> {
  if (cache.has(name)) return cache.get(name) as KnobValue<N>;
  const spec: Spec = KNOBS[name];
  const raw = process.env[name];
  const value = raw === undefined || raw === "" ? spec.default : parse(name, spec, raw);
  cache.set(name, value);
  return value as KnobValue<N>;
}

/** Forget the values read so far: the next knob() reads process.env again (tests that change it). */
export function reloadKnobs(): void {
  cache.clear();
}

/** Read every knob (the CLI does at start, so a bad value fails before any work); throws the first error. */
export function checkKnobs(): void {
  for (const name of Object.keys(KNOBS) as KnobName[]) knob(name);
}

function defaultText(spec: Spec): string {
  if (spec.defaultDoc) return spec.defaultDoc;
  if (spec.default === null) return "unset";
  if (spec.kind === "flag") return spec.default ? "`1`" : "`0`";
  return `\`${Array.isArray(spec.default) ? spec.default.join(",") : String(spec.default)}\``;
}

/** docs/knobs.md's table of knobs (markdown), made from the declarations above. */
export function knobTable(): string {
  const rows = (Object.entries(KNOBS) as [KnobName, Spec][]).map(
    ([name, s]) => `| \`${name}\` | ${s.group} | ${allowed(s)} | ${defaultText(s)} | ${s.doc} |`,
  );
  return ["| variable | for | allowed | default | meaning |", "|---|---|---|---|---|", ...rows].join("\n");
}

const BEGIN = "<!-- knobs:begin -->";
const END = "<!-- knobs:end -->";

/** `readme` with the text between its knobs markers replaced by knobTable() (scripts/readme-knobs.mjs). */
export function withKnobTable(readme: string): string {
  const a = readme.indexOf(BEGIN);
  const b = readme.indexOf(END);
  if (a < 0 || b < a) throw new Error(`docs/knobs.md: no ${BEGIN} … ${END} markers`);
  return `${readme.slice(0, a + BEGIN.length)}\n${knobTable()}\n${readme.slice(b)}`;
}
