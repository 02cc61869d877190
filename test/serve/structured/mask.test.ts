// The trie walk against brute force, as a property over many seeds: on a small random vocabulary (every
// single byte plus random multi-byte tokens of JSON characters, escapes and UTF-8 fragments), the mask at
// every step of a random constrained walk equals feeding each token's bytes to the automaton one by one;
// the mask is never empty; the finished text parses and validates.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Ajv } from "ajv";
import { feed } from "../../../src/serve/structured/automaton.js";
import { JsonConstraintFactory } from "../../../src/serve/structured/constraint.js";
import type { ConstraintVocab } from "../../../src/serve/structured/trie.js";
import { rng } from "../../helpers.js";
import { SCHEMAS } from "./schemas.js";

const PIECES = [
  '{"',
  '":',
  '": ',
  '",',
  '", "',
  '"}',
  "},",
  "}]",
  "[{",
  "]}",
  "true",
  "false",
  "null",
  "nul",
  "12",
  "0.",
  "e+",
  "-1",
  "\\n",
  "\\u00",
  "\\",
  '\\"',
  "name",
  "age",
  "id",
  "price",
  "kind",
  "extra",
  "red",
  '"red"',
  " ",
  "  ",
  "\n",
  "\n  ",
  "\t",
  "é",
  "顔",
  "😀",
];
const enc = new TextEncoder();

function randomVocab(seed: number): ConstraintVocab {
  const r = rng(seed);
  const bytes: (Uint8Array | null)[] = [];
  for (let b = 0; b < 256; b++) bytes.push(Uint8Array.of(b));
  for (const p of PIECES) bytes.push(enc.encode(p));
  for (let i = 0; i < 200; i++) {
    const parts: number[] = [];
    const n = 1 + Math.floor(r() * 3);
    for (let k = 0; k < n; k++) parts.push(...enc.encode(PIECES[Math.floor(r() * PIECES.length)]!));
    // cut some tokens inside a UTF-8 character
    const cut = r() < 0.3 ? Math.max(1, parts.length - 1) : parts.length;
    bytes.push(Uint8Array.from(parts.slice(0, cut)));
  }
  bytes.push(null, null); // two special ids: a stop id and another
  return { size: bytes.length, bytes, stopIds: [bytes.length - 2] };
}

test("the trie mask equals brute force at every step, over many seeds and the schema table", () => {
  const ajv = new Ajv({ strict: false });
  for (let seed = 1; seed <= 12; seed++) {
    const vocab = randomVocab(seed);
    const factory = new JsonConstraintFactory(vocab);
    for (const [name, schema] of SCHEMAS) {
      const r = rng(seed * 7 + name.length);
      const c = factory.json(schema);
      const out: number[] = [];
      const free = Math.floor(r() * 40);
      let stopped = false;
      for (let i = 0; i < 1000 && !stopped; i++) {
        const m = c.mask();
        for (let id = 0; id < vocab.size; id++) {
          const b = vocab.bytes[id];
          const want = b ? feed(c.state, b) !== null : vocab.stopIds.includes(id) && c.complete;
          assert.equal(m[id] === 1, want, `${name} seed ${seed}: token ${id} after ${JSON.stringify(out)}`);
        }
        const allowed = [...m.keys()].filter((id) => m[id]);
        assert.ok(allowed.length > 0, `${name} seed ${seed}: no token allowed`);
        const id = i < free ? allowed[Math.floor(r() * allowed.length)]! : c.finishingToken();
        c.accept(id);
        if (vocab.stopIds.includes(id)) stopped = true;
        else out.push(...vocab.bytes[id]!);
      }
      assert.ok(stopped, `${name} seed ${seed}: did not finish`);
      const text = new TextDecoder("utf-8", { fatal: true }).decode(Uint8Array.from(out));
      const validate = ajv.compile(schema ?? { type: "object" });
      assert.ok(validate(JSON.parse(text)), `${name} seed ${seed}: ${text}`);
    }
  }
});
