// Builds assets/pretrain-corpus/: the compact corpus `npm start` pre-trains on, from ../shared/data/corpora/.
// Each source is stored gzip-compressed as it was read (the Project Gutenberg texts keep their own
// licence header and footer), with LICENSES.md beside them naming each source and its terms.
// Usage: node scripts/build-pretrain-corpus.mjs [CORPORA_DIR]
import { mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const src = process.argv[2] ?? join(root, "..", "shared", "data", "corpora");
const out = join(root, "assets", "pretrain-corpus");
const SOURCES = [
  [
    "books-en/carroll.txt",
    "carroll.txt.gz",
    "Lewis Carroll, Alice's Adventures in Wonderland (Project Gutenberg #11)",
    "high",
  ],
  ["books-en/poe.txt", "poe.txt.gz", "Edgar Allan Poe, The Raven (Project Gutenberg)", "high"],
  [
    "books-en/fitzgerald.txt",
    "fitzgerald.txt.gz",
    "F. Scott Fitzgerald, The Great Gatsby (Project Gutenberg #64317)",
    "web",
  ],
  [
    "books-en/melville.txt",
    "melville.txt.gz",
    "Herman Melville, Moby Dick; Or, The Whale (Project Gutenberg #2701)",
    "web",
  ],
  [
    "tinyshakespeare.txt",
    "tinyshakespeare.txt.gz",
    "Shakespeare excerpts (tinyshakespeare, Karpathy's char-rnn data)",
    "web",
  ],
];
mkdirSync(out, { recursive: true });
const write = (path, data) => {
  writeFileSync(`${path}.tmp`, data);
  renameSync(`${path}.tmp`, path);
};
const manifest = [];
for (const [from, to, title, mix] of SOURCES) {
  const data = readFileSync(join(src, from));
  write(join(out, to), gzipSync(data, { level: 9 }));
  manifest.push({ file: to, source: from, title, mix, bytes: data.length });
  console.log(`${to}: ${data.length} bytes`);
}
write(join(out, "manifest.json"), `${JSON.stringify(manifest, null, 2)}\n`);
write(
  join(out, "LICENSES.md"),
  `# Licences of the pre-training corpus

Built by \`scripts/build-pretrain-corpus.mjs\` from \`../shared/data/corpora/\`.

${manifest.map((m) => `- \`${m.file}\`: ${m.title}.`).join("\n")}

- The Project Gutenberg texts (carroll, poe, fitzgerald, melville) are in the public domain in the United
  States; each file keeps the Project Gutenberg header and licence
  (https://www.gutenberg.org/policy/license.html) exactly as distributed.
- \`tinyshakespeare.txt\`: works of William Shakespeare (public domain), as collected for
  https://github.com/karpathy/char-rnn (MIT licence).

"mix" in manifest.json: "high" sources form the annealing (high-quality) mix, "web" ones only the main mix.
`,
);
