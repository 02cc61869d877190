// Structured-output benchmark: the time to build the vocabulary tries for Meta's 128,256-token vocabulary,
// and the time of one allowed-token mask (and one accept) on it, by the kind of automaton state —
// a value or key position, inside a string (plain tokens copied, the rest walked), inside a number —
// over a decoding with random logits under a nested schema and under json_object. Also the brute-force
// mask (every token fed to the automaton) once, as the baseline the trie replaces.
import { feed } from "../src/serve/structured/automaton.js";
import { JsonConstraintFactory } from "../src/serve/structured/constraint.js";
import { tokenizerVocab } from "../src/serve/structured/trie.js";
import { Tokenizer } from "../src/tokenizer/index.js";
import { rng } from "../test/helpers.js";
import { SCHEMAS } from "../test/serve/structured/schemas.js";

export async function run(): Promise<void> {
  const tok = Tokenizer.llama3();
  const eot = tok.special("<|eot_id|>");
  let t0 = performance.now();
  const vocab = tokenizerVocab(tok, [eot]);
  const factory = new JsonConstraintFactory(vocab);
  console.log(
    `build: ${(performance.now() - t0).toFixed(0)} ms for ${vocab.size} ids (trie ${factory.all.label.length} nodes, non-plain trie ${factory.rest.label.length})`,
  );
  for (const [name, schema] of SCHEMAS.filter(([n]) => n === "json_object" || n === "nested")) {
    const byKind = new Map<string, number[]>();
    let accepts = 0;
    let acceptMs = 0;
    for (let seed = 1; seed <= 5; seed++) {
      const c = factory.json(schema);
      const r = rng(seed);
      for (let i = 0; i < 300; i++) {
        const kind = c.state.f.t;
        t0 = performance.now();
        const m = c.mask();
        const ms = performance.now() - t0;
        byKind.set(kind, [...(byKind.get(kind) ?? []), ms]);
        const allowed: number[] = [];
        for (let k = 0; k < m.length; k++) if (m[k]) allowed.push(k);
        const id = i < 200 ? allowed[Math.floor(r() * allowed.length)]! : c.finishingToken();
        t0 = performance.now();
        c.accept(id);
        acceptMs += performance.now() - t0;
        accepts++;
        if (id === eot) break;
      }
    }
    const all = [...byKind.values()].flat();
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
    const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) * p)]!;
    console.log(
      `${name}: mask mean ${mean(all).toFixed(2)} ms, p50 ${pct(all, 0.5).toFixed(2)}, p99 ${pct(all, 0.99).toFixed(2)} over ${all.length} steps; accept ${(acceptMs / accepts).toFixed(3)} ms`,
    );
    for (const [kind, xs] of byKind)
      console.log(
        `  state ${kind.padEnd(4)}: ${xs.length} steps, mean ${mean(xs).toFixed(2)} ms, max ${Math.max(...xs).toFixed(2)}`,
      );
  }
  // the baseline: feed every token's bytes to the automaton
  const c = factory.json(SCHEMAS.find(([n]) => n === "nested")![1]);
  for (const id of tok.encode('{"items": [{"id": 3, "price": 1.5, "tags": ["a')) c.accept(id);
  t0 = performance.now();
  let n = 0;
  for (let id = 0; id < vocab.size; id++) if (vocab.bytes[id] && feed(c.state, vocab.bytes[id]!)) n++;
  const brute = performance.now() - t0;
  t0 = performance.now();
  c.mask();
  console.log(
    `inside a string: brute force ${brute.toFixed(1)} ms (${n} allowed), trie ${(performance.now() - t0).toFixed(2)} ms`,
  );
}
