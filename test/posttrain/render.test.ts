// The dialog tags: exactly the assistant content and its end-of-turn token are SFT-supervised, on a
// multi-turn dialog with a tool call and a tool result, the ids are ChatFormat's own, and DPO's counted
// tokens are the content alone (no header, role name, "\n\n", <|eot_id|>/<|eom_id|>).
import assert from "node:assert/strict";
import { test } from "node:test";
import {
  CONTENT,
  dpoCounted,
  END,
  HEADER,
  renderDialogTags,
  renderPrompt,
  renderResponse,
  sftSupervised,
} from "../../src/posttrain/render.js";
import { ChatFormat, type Message } from "../../src/tokenizer/chat.js";
import { Tokenizer } from "../../src/tokenizer/tiktoken.js";

const tok = Tokenizer.llama3();
const chat = new ChatFormat(tok);
const dialog: Message[] = [
  { role: "system", content: "Environment: ipython\nTools: brave_search" },
  { role: "user", content: "Weather in Menlo Park?" },
  {
    role: "assistant",
    content: "",
    toolCalls: [{ toolName: "brave_search", arguments: { query: "Menlo Park weather" } }],
    stopReason: "end_of_message",
  },
  { role: "tool", content: '{"temp": 20}' },
  { role: "assistant", content: "It is 20 degrees." },
  { role: "user", content: "Thanks" },
  { role: "assistant", content: "You're welcome." },
];

test("ids are ChatFormat's; only assistant content and its eot/eom are supervised", () => {
  const r = renderDialogTags(chat, dialog);
  assert.deepEqual(r.ids, chat.encodeDialogPrompt(dialog, { addGenerationPrompt: false }));
  const supervised = r.ids.filter((_, i) => sftSupervised(r.tags[i]!));
  assert.equal(
    tok.decode(supervised),
    '<|python_tag|>brave_search.call(query="Menlo Park weather")<|eom_id|>It is 20 degrees.<|eot_id|>You\'re welcome.<|eot_id|>',
  );
  // Three assistant turns: three end tokens, and every header token of theirs is HEADER.
  assert.equal(r.tags.filter((t) => t === END).length, 3);
  const headers = r.ids.filter((_, i) => r.tags[i] === HEADER);
  assert.equal(tok.decode(headers), "<|start_header_id|>assistant<|end_header_id|>\n\n".repeat(3));
});

test("DPO counts the content only; a prompt's assistant turns are context", () => {
  const p = renderPrompt(chat, dialog.slice(0, 6));
  assert.ok(p.tags.every((t) => !sftSupervised(t)));
  const resp = renderResponse(chat, [{ role: "assistant", content: "Sure." }]);
  assert.equal(tok.decode(resp.ids.filter((_, i) => dpoCounted(resp.tags[i]!))), "Sure.");
  assert.equal(resp.tags.filter((t) => t === CONTENT).length, tok.encode("Sure.").length);
  assert.deepEqual(
    [...p.ids, ...resp.ids],
    chat.encodeDialogPrompt([...dialog.slice(0, 6), { role: "assistant", content: "Sure." }], {
      addGenerationPrompt: false,
    }),
  );
});
