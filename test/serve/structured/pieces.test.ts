// Structured output over a SentencePiece piece list (stories260K's 512 pieces, byte fallbacks included),
// reached through the features object the HTTP layer takes: every schema of the table, random-logit
// decoding then the finishing tokens, gives text that parses and that ajv validates.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Ajv } from "ajv";
import { PieceVocab } from "../../../src/generate/codec.js";
import { features } from "../../../src/serve/features.js";
import { repoPath, rng } from "../../helpers.js";
import { SCHEMAS } from "./schemas.js";

test("structured output over stories260K's piece vocabulary, through features.structured", () => {
  const codec = PieceVocab.fromFile(repoPath("test", "fixtures", "stories260K", "vocab.json"));
  const factory = features.structured.factory(features.structured.vocabOf(codec, [codec.eosId]));
  const ajv = new Ajv({ strict: false });
  for (const [name, schema] of SCHEMAS)
    for (let seed = 1; seed <= 4; seed++) {
      const c = factory.json(schema);
      const r = rng(seed * 31 + name.length);
      const ids: number[] = [];
      for (let i = 0; ; i++) {
        assert.ok(i < 2000, `${name}: did not finish`);
        const m = c.mask();
        const allowed = [...m.keys()].filter((id) => m[id]);
        assert.ok(allowed.length > 0);
        const id = i < seed * 10 ? allowed[Math.floor(r() * allowed.length)]! : c.finishingToken();
        c.accept(id);
        if (id === codec.eosId) break;
        ids.push(id);
      }
      const text = codec.decode(ids);
      const validate = ajv.compile(schema ?? { type: "object" });
      assert.ok(validate(JSON.parse(text)), `${name}: ${text}`);
    }
});
