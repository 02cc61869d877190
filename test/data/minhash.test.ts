// MinHash + LSH on a generated corpus with planted exact duplicates, near duplicates at known Jaccard
// similarity and distinct documents: pair precision ≥ 0.95 and recall ≥ 0.9 above the threshold.
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  bucketPairs,
  clusterSignatures,
  jaccardEstimate,
  MINHASH_DEFAULTS,
  MinHasher,
  UnionFind,
  wordHashes,
} from "../../src/data/minhash.js";
import { plantedCorpus, shingleJaccard } from "./corpus.js";

test("word hashing: case-folded ASCII words, punctuation splits, CJK one word per character", () => {
  const h = (s: string) => {
    const r = wordHashes(s, new Uint32Array(2));
    return Array.from(r.hashes.subarray(0, r.count));
  };
  assert.deepEqual(h("Hello, WORLD! hello world"), [...h("hello world"), ...h("hello world")]);
  assert.equal(h("naïve café—déjà vu").length, 4);
  assert.equal(h("我爱北京 tokyo").length, 5);
  assert.deepEqual(h("  ...  "), []);
});

test("signature: estimates Jaccard similarity without bias", () => {
  const c = plantedCorpus({
    distinct: 0,
    exact: 0,
    near: 60,
    words: 300,
    seed: 3,
    editRates: [0.02, 0.05, 0.1, 0.2],
  });
  const mh = new MinHasher({ ...MINHASH_DEFAULTS, bands: 16, rows: 16 });
  let err = 0;
  let n = 0;
  for (let i = 0; i < c.docs.length; i++)
    for (let j = i + 1; j < c.docs.length; j++) {
      if (c.group[i] !== c.group[j]) continue;
      const truth = shingleJaccard(c.words[i]!, c.words[j]!, 5);
      const est = jaccardEstimate(mh.signature(c.docs[i]!.text), mh.signature(c.docs[j]!.text));
      err += est - truth;
      n++;
      assert.ok(Math.abs(est - truth) < 0.12, `estimate ${est} vs ${truth}`);
    }
  assert.ok(Math.abs(err / n) < 0.02, `mean error ${err / n}`);
  assert.equal(
    jaccardEstimate(mh.signature("same words here now ok"), mh.signature("Same words, here now ok!")),
    1,
  );
});

test("bucket pairs and union-find: linear edges per bucket, root is the smallest member", () => {
  const recs = Uint32Array.from([5, 5, 7, 1, 1, 3, 5, 5, 2, 5, 5, 9, 1, 2, 4]);
  const edges: [number, number][] = [];
  bucketPairs(recs, (a, b) => edges.push([a, b]));
  assert.deepEqual(edges, [
    [2, 7],
    [2, 9],
    [7, 9],
  ]);
  const uf = new UnionFind(10);
  uf.union(9, 7);
  uf.union(7, 2);
  assert.equal(uf.find(9), 2);
});

test("planted corpus: precision ≥ 0.95 and recall ≥ 0.9 for pairs with Jaccard ≥ 0.8", () => {
  const threshold = 0.8;
  const c = plantedCorpus({
    distinct: 400,
    exact: 40,
    near: 160,
    words: 200,
    seed: 11,
    editRates: [0.005, 0.01, 0.02, 0.04, 0.08, 0.15, 0.3],
  });
  const mh = new MinHasher(MINHASH_DEFAULTS);
  const sigs = c.docs.map((d) => mh.signature(d.text));
  const { root, sizes } = clusterSignatures(sigs, MINHASH_DEFAULTS, threshold);
  // Truth: pairs above the threshold (only planted groups can be; others share no shingles).
  const truth = new Set<string>();
  let above = 0;
  let below = 0;
  for (let i = 0; i < c.docs.length; i++)
    for (let j = i + 1; j < c.docs.length; j++) {
      if (c.group[i] !== c.group[j]) continue;
      if (shingleJaccard(c.words[i]!, c.words[j]!, 5) >= threshold) {
        truth.add(`${i},${j}`);
        above++;
      } else below++;
    }
  assert.ok(above > 150 && below > 40, `corpus spans the threshold (${above} above, ${below} below)`);
  const members = new Map<number, number[]>();
  for (const [i, r] of root.entries()) members.set(r, [...(members.get(r) ?? []), i]);
  let predicted = 0;
  let hit = 0;
  for (const m of members.values())
    for (let x = 0; x < m.length; x++)
      for (let y = x + 1; y < m.length; y++) {
        predicted++;
        const [i, j] = [m[x]!, m[y]!];
        if (truth.has(`${i},${j}`)) hit++;
        else assert.ok(shingleJaccard(c.words[i]!, c.words[j]!, 5) < threshold);
      }
  const precision = hit / predicted;
  const recall = hit / truth.size;
  assert.ok(precision >= 0.95, `precision ${precision}`);
  assert.ok(recall >= 0.9, `recall ${recall}`);
  assert.equal(sizes.filter((s) => s === 3).length >= 40, true, "every exact triple is one cluster");
});
