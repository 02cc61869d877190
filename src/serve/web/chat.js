// herd serve's chat page: a conversation against this server's own /v1/chat/completions, streamed
// (`stream: true` with `stream_options.include_usage`), with a Stop button (aborting the fetch; the server
// cancels a request whose client goes away), a system prompt, sampling settings, a model picker from
// /v1/models and an API key sent as a Bearer token. Replies are Markdown rendered by marked and
// sanitised by DOMPurify before they touch the DOM; tool calls (delta.tool_calls) are shown as their own
// blocks, as text. Each reply shows its tokens, tokens/s and time to first token. Plain browser ES
// module, no framework; served at /web/chat.js under a CSP that allows no inline script.
import { marked } from "/web/vendor/marked.js";
import DOMPurify from "/web/vendor/purify.js";

const $ = (id) => document.getElementById(id);
const ui = {
  log: $("log"),
  form: $("composer"),
  input: $("input"),
  send: $("send"),
  stop: $("stop"),
  clear: $("clear"),
  system: $("system"),
  model: $("model"),
  key: $("key"),
  status: $("status"),
};
/** The conversation so far, as OpenAI messages (the system prompt is added per request). */
let history = [];
let controller = null;

function setStatus(text, error = false) {
  ui.status.textContent = text;
  ui.status.classList.toggle("error", error);
}

function headers() {
  const h = { "content-type": "application/json" };
  const key = ui.key.value.trim();
  if (key) h.authorization = `Bearer ${key}`;
  return h;
}

async function errorOf(res) {
  try {
    return (await res.json()).error?.message ?? res.statusText;
  } catch {
    return `${res.status} ${res.statusText}`;
  }
}

async function loadModels() {
  try {
    const res = await fetch("/v1/models", { headers: headers() });
    if (!res.ok) throw new Error(await errorOf(res));
    const { data } = await res.json();
    const current = ui.model.value;
    ui.model.replaceChildren(...data.map((m) => new Option(m.id, m.id)));
    if (data.some((m) => m.id === current)) ui.model.value = current;
    setStatus(`${data.length} model${data.length === 1 ? "" : "s"}`);
  } catch (e) {
    setStatus(`models: ${e.message}`, true);
  }
}

/** A number from a settings field, or undefined when it is empty. */
function field(id, parse = Number) {
  const v = $(id).value.trim();
  return v === "" ? undefined : parse(v);
}

function renderMarkdown(target, text) {
  target.innerHTML = DOMPurify.sanitize(marked.parse(text));
}

function addMessage(role, text = "") {
  const div = document.createElement("div");
  div.className = `msg ${role}`;
  const label = document.createElement("div");
  label.className = "role";
  label.textContent = role;
  const body = document.createElement("div");
  body.className = "body";
  const tools = document.createElement("div");
  tools.className = "tools";
  const stats = document.createElement("div");
  stats.className = "stats";
  div.append(label, body, tools, stats);
  renderMarkdown(body, text);
  ui.log.append(div);
  ui.log.scrollTop = ui.log.scrollHeight;
  return { div, body, tools, stats };
}

/** Tool calls so far (arguments may come in pieces, by index) as blocks of text. */
function renderToolCalls(target, calls) {
  target.replaceChildren(
    ...calls.filter(Boolean).map((c) => {
      const box = document.createElement("div");
      box.className = "tool-call";
      const name = document.createElement("div");
      name.className = "name";
      name.textContent = `tool call: ${c.function.name}`;
      const args = document.createElement("pre");
      args.textContent = c.function.arguments;
      box.append(name, args);
      return box;
    }),
  );
}

function mergeToolCalls(calls, deltas) {
  for (const d of deltas) {
    const i = d.index ?? calls.length;
    const c = (calls[i] ??= { id: d.id, type: "function", function: { name: "", arguments: "" } });
    if (d.id) c.id = d.id;
    if (d.function?.name) c.function.name += d.function.name;
    if (d.function?.arguments) c.function.arguments += d.function.arguments;
  }
}

/** Server-sent events of a streamed chat completion, one parsed chunk at a time. */
async function* events(res) {
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buf += value;
    let end = buf.indexOf("\n\n");
    while (end >= 0) {
      const data = buf
        .slice(0, end)
        .split("\n")
        .filter((l) => l.startsWith("data:"))
        .map((l) => l.slice(5).trim())
        .join("\n");
      buf = buf.slice(end + 2);
      if (data === "[DONE]") return;
      if (data) yield JSON.parse(data);
      end = buf.indexOf("\n\n");
    }
  }
}

function setBusy(busy) {
  document.body.dataset.busy = String(busy);
  ui.send.disabled = busy;
  ui.stop.disabled = !busy;
}

function statsText({ tokens, ttft, perSecond, finish }) {
  const parts = [`${tokens} token${tokens === 1 ? "" : "s"}`];
  if (perSecond !== undefined) parts.push(`${perSecond.toFixed(1)} tok/s`);
  if (ttft !== undefined) parts.push(`first token ${Math.round(ttft)} ms`);
  if (finish) parts.push(finish);
  return parts.join(" · ");
}

async function send(text) {
  const conv = history; // "New chat" during a reply starts another; this reply stays with its own
  conv.push({ role: "user", content: text });
  addMessage("user", text);
  const system = ui.system.value.trim();
  const messages = system ? [{ role: "system", content: system }, ...conv] : conv;
  const request = {
    model: ui.model.value || undefined,
    messages,
    stream: true,
    stream_options: { include_usage: true },
    temperature: field("temperature"),
    top_p: field("top_p"),
    max_tokens: field("max_tokens", (v) => Number.parseInt(v, 10)),
    seed: field("seed", (v) => Number.parseInt(v, 10)),
  };
  const reply = addMessage("assistant");
  reply.div.dataset.state = "streaming";
  let content = "";
  const calls = [];
  let deltas = 0;
  let finish = null;
  let usage = null;
  let timings = null;
  let ttft;
  let tFirst;
  const t0 = performance.now();
  controller = new AbortController();
  setBusy(true);
  try {
    const res = await fetch("/v1/chat/completions", {
      method: "POST",
      headers: headers(),
      body: JSON.stringify(request),
      signal: controller.signal,
    });
    if (!res.ok) throw new Error(await errorOf(res));
    for await (const chunk of events(res)) {
      if (chunk.error) throw new Error(chunk.error.message);
      if (chunk.usage) usage = chunk.usage;
      if (chunk.timings) timings = chunk.timings;
      const c = chunk.choices?.[0];
      if (!c) continue;
      if (c.finish_reason) finish = c.finish_reason;
      const d = c.delta ?? {};
      if (!d.content && !d.tool_calls) continue;
      tFirst ??= performance.now();
      ttft ??= tFirst - t0;
      deltas++;
      if (d.content) {
        content += d.content;
        reply.body.dataset.raw = content;
        renderMarkdown(reply.body, content);
      }
      if (d.tool_calls) {
        mergeToolCalls(calls, d.tool_calls);
        renderToolCalls(reply.tools, calls);
      }
      ui.log.scrollTop = ui.log.scrollHeight;
    }
    reply.div.dataset.state = "done";
  } catch (e) {
    const stopped = e.name === "AbortError";
    reply.div.dataset.state = stopped ? "stopped" : "error";
    reply.div.classList.add(stopped ? "stopped" : "error");
    finish = stopped ? "stopped" : `error: ${e.message}`;
  } finally {
    controller = null;
    setBusy(false);
  }
  const elapsed = (performance.now() - (tFirst ?? t0)) / 1000;
  const tokens = usage?.completion_tokens ?? deltas;
  const perSecond =
    timings?.predicted_per_second ?? (elapsed > 0 && tokens > 1 ? tokens / elapsed : undefined);
  reply.stats.textContent = statsText({ tokens, ttft, perSecond, finish });
  reply.div.dataset.tokens = String(tokens);
  if (content || calls.length) {
    const m = { role: "assistant", content };
    if (calls.length) m.tool_calls = calls.filter(Boolean);
    conv.push(m);
  }
}

ui.form.addEventListener("submit", (e) => {
  e.preventDefault();
  const text = ui.input.value.trim();
  if (!text || controller) return;
  ui.input.value = "";
  send(text);
});
ui.input.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && !e.shiftKey) {
    e.preventDefault();
    ui.form.requestSubmit();
  }
});
ui.stop.addEventListener("click", () => controller?.abort());
ui.clear.addEventListener("click", () => {
  controller?.abort();
  history = [];
  ui.log.replaceChildren();
});
ui.key.addEventListener("change", loadModels);
marked.use({ gfm: true });
setBusy(false);
loadModels();
