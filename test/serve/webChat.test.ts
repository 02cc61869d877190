// The web chat page of `herd serve` end to end in a real browser: Debian's headless Chromium driven by
// playwright-core, against the tiny served model (fixture.ts) with an API key. It checks the page and its
// assets load without the key under a strict CSP and fetch nothing off the origin, the model picker fills
// once the key is typed, a typed message streams in (the reply grows over several observations) and ends
// equal to the same request made with fetch, the Stop button ends a long generation early (the server's
// request is cancelled) and leaves the page usable, and Markdown from the model is rendered while HTML in
// it is sanitised (with the page's CSP bypassed, so only DOMPurify stands between the payload and the
// page). Screenshots are kept under test-artifacts/. Without /usr/bin/chromium the tests skip.
import assert from "node:assert/strict";
import { existsSync, mkdirSync } from "node:fs";
import { after, before, test } from "node:test";
import { type Browser, chromium, type Page } from "playwright-core";
import { setBackend } from "../../src/backends/index.js";
import { repoPath } from "../helpers.js";
import { type Fixture, servedFixture } from "./fixture.js";

// The few browser globals the functions run in the page use (tsconfig has no DOM lib); module-scoped.
interface PageElement {
  dataset: Record<string, string | undefined>;
  textContent: string | null;
  complete?: boolean;
  querySelector(s: string): PageElement | null;
}
declare const document: {
  querySelector(s: string): PageElement | null;
  querySelectorAll(s: string): ArrayLike<PageElement> & Iterable<PageElement>;
  getElementById(id: string): PageElement | null;
};
declare const window: unknown;
declare const MutationObserver: new (cb: () => void) => { observe(node: unknown, opts: object): void };

const CHROMIUM = "/usr/bin/chromium";
const skip = existsSync(CHROMIUM)
  ? false
  : `no ${CHROMIUM}: install Debian's Chromium (apt-get install chromium) to run the web chat tests`;
const KEY = "web-test-key";
const ARTIFACTS = repoPath("test-artifacts");

let fx: Fixture;
let browser: Browser;
let page: Page;
const offOrigin: string[] = [];
const pageErrors: string[] = [];

before(async () => {
  if (skip) return;
  setBackend("js");
  fx = await servedFixture({ apiKey: KEY });
  browser = await chromium.launch({ executablePath: CHROMIUM });
  page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
  page.on("request", (r) => {
    if (!r.url().startsWith(`${fx.served.url}/`)) offOrigin.push(r.url());
  });
  page.on("pageerror", (e) => pageErrors.push(e.message));
});
after(async () => {
  if (skip) return;
  await browser?.close();
  await fx?.cleanup();
});

async function screenshot(p: Page, name: string): Promise<string> {
  mkdirSync(ARTIFACTS, { recursive: true });
  const path = `${ARTIFACTS}/${name}`;
  await p.screenshot({ path, fullPage: true });
  console.log(`web chat screenshot: ${path}`);
  return path;
}

async function setField(id: string, value: string) {
  await page.locator(`#${id}`).fill(value);
}

const lastReply = () => page.locator(".msg.assistant").last();

/** Record, on every DOM change, the last reply's state and the length of the text streamed into it. */
async function watchGrowth() {
  await page.evaluate(() => {
    const w = window as unknown as { growth: { state: string; raw: number; shown: number }[] };
    w.growth = [];
    new MutationObserver(() => {
      const m = [...document.querySelectorAll(".msg.assistant")].at(-1);
      const body = m?.querySelector(".body");
      if (m && body)
        w.growth.push({
          state: m.dataset.state ?? "",
          raw: (body.dataset.raw ?? "").length,
          shown: (body.textContent ?? "").length,
        });
    }).observe(document.getElementById("log")!, { subtree: true, childList: true, attributes: true });
  });
}

async function chatDirect(body: object) {
  const r = await fetch(`${fx.served.url}/v1/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${KEY}` },
    body: JSON.stringify(body),
  });
  assert.equal(r.status, 200);
  return (await r.json()) as {
    choices: { message: { content: string } }[];
    usage: { completion_tokens: number };
  };
}

async function activeRequests(): Promise<number> {
  const text = await (await fetch(`${fx.served.url}/metrics`)).text();
  return Number(/^herd_active_requests (\d+)$/m.exec(text)![1]);
}

test("the page and its assets load without the key, under a strict CSP, with nothing off the origin", {
  skip,
}, async () => {
  const res = await fetch(`${fx.served.url}/`);
  assert.equal(res.status, 200);
  const csp = res.headers.get("content-security-policy") ?? "";
  assert.match(csp, /script-src 'self'/);
  assert.match(csp, /default-src 'none'/);
  assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
  const html = await res.text();
  assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/, "no inline script in the page");
  for (const asset of ["/web/chat.js", "/web/chat.css", "/web/vendor/marked.js", "/web/vendor/purify.js"])
    assert.equal((await fetch(`${fx.served.url}${asset}`)).status, 200, asset);
  assert.equal((await fetch(`${fx.served.url}/v1/models`)).status, 401, "the API still needs the key");

  await page.goto(`${fx.served.url}/`);
  await page.locator("#status.error").waitFor();
  assert.match((await page.locator("#status").textContent()) ?? "", /API key/);
  await setField("key", KEY);
  await page.locator("#key").press("Tab");
  await page.locator("#model option", { hasText: "tiny-llama3" }).waitFor({ state: "attached" });
  assert.equal(await page.locator("#model").inputValue(), "tiny-llama3");
  assert.deepEqual(offOrigin, []);
  assert.deepEqual(pageErrors, []);
});

test("a typed message streams in and ends equal to the same request made directly", { skip }, async () => {
  const settings = { temperature: 0.6, top_p: 0.9, max_tokens: 12, seed: 7 };
  await setField("system", "You are terse.");
  for (const [k, v] of Object.entries(settings)) await setField(k, String(v));
  await watchGrowth();
  await setField("input", "Tell me about llamas.");
  await page.locator("#input").press("Enter");
  await page.locator(".msg.assistant[data-state=done]").waitFor({ timeout: 60_000 });

  const growth = await page.evaluate(
    () => (window as unknown as { growth: { state: string; raw: number; shown: number }[] }).growth,
  );
  const streaming = [
    ...new Set(growth.filter((g) => g.state === "streaming" && g.raw > 0).map((g) => g.raw)),
  ];
  assert.ok(streaming.length >= 2, `the reply grew over ${streaming.length} observations before the end`);
  assert.deepEqual(
    streaming,
    [...streaming].sort((a, b) => a - b),
    "the streamed text only grows",
  );

  const direct = await chatDirect({
    model: "tiny-llama3",
    messages: [
      { role: "system", content: "You are terse." },
      { role: "user", content: "Tell me about llamas." },
    ],
    ...settings,
  });
  const reply = lastReply();
  assert.equal(await reply.locator(".body").getAttribute("data-raw"), direct.choices[0]!.message.content);
  assert.ok(((await reply.locator(".body").textContent()) ?? "").trim().length > 0, "the reply is shown");
  assert.equal(await reply.getAttribute("data-tokens"), String(direct.usage.completion_tokens));
  assert.match(
    (await reply.locator(".stats").textContent()) ?? "",
    /^\d+ tokens? · [\d.]+ tok\/s · first token \d+ ms · (length|stop)$/,
  );
  assert.deepEqual(pageErrors, []);
});

test("Stop ends a long generation early, the server cancels it, and the page is usable again", {
  skip,
}, async () => {
  await page.locator("#clear").click();
  await setField("max_tokens", "200");
  await setField("input", "Write a very long story.");
  await page.locator("#send").click();
  assert.equal(await page.locator("#send").isDisabled(), true);
  await page.waitForFunction(
    () => (document.querySelector(".msg.assistant .body")?.dataset.raw ?? "").length > 0,
  );
  await page.locator("#stop").click();
  await page.locator(".msg.assistant[data-state=stopped]").waitFor();
  const tokens = Number(await lastReply().getAttribute("data-tokens"));
  assert.ok(tokens >= 1 && tokens < 200, `stopped after ${tokens} of 200 tokens`);
  assert.match((await lastReply().locator(".stats").textContent()) ?? "", /stopped$/);
  assert.equal(await page.locator("body").getAttribute("data-busy"), "false");
  assert.equal(await page.locator("#send").isEnabled(), true);
  assert.equal(await page.locator("#stop").isDisabled(), true);
  // The disconnect freed the server's slot.
  const until = Date.now() + 20_000;
  while ((await activeRequests()) > 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
  assert.equal(await activeRequests(), 0);

  // The conversation goes on: the stopped reply stays in it and a new message gets an answer.
  await setField("max_tokens", "4");
  await setField("input", "And a short one?");
  await page.locator("#input").press("Enter");
  await page
    .locator(".msg.assistant")
    .nth(1)
    .and(page.locator("[data-state=done]"))
    .waitFor({ timeout: 60_000 });
  assert.equal(await page.locator(".msg.user").count(), 2);
  await screenshot(page, "web-chat.png");
  assert.deepEqual(pageErrors, []);
});

test("Markdown and tool calls are rendered; HTML in model output is sanitised, never run", {
  skip,
}, async () => {
  // A crafted stream in herd's chunk shape, with the page's CSP bypassed: only DOMPurify can stop the payload.
  const ctx = await browser.newContext({ bypassCSP: true, viewport: { width: 1200, height: 800 } });
  const p = await ctx.newPage();
  const head = { id: "chatcmpl-web", object: "chat.completion.chunk", created: 0, model: "tiny-llama3" };
  const delta = (d: object, finish: string | null = null) => ({
    ...head,
    choices: [{ index: 0, delta: d, logprobs: null, finish_reason: finish }],
  });
  const chunks = [
    delta({ role: "assistant", content: "" }),
    delta({ content: "# Llamas\n\nThey are **woolly** and `calm`.\n\n" }),
    delta({ content: "```js\nconst herd = 3;\n```\n\n" }),
    delta({ content: '<img src="x" onerror="window.pwned = 1"><script>window.pwned = 2</script>' }),
    delta({ content: '\n\n[click](javascript:window.pwned=3) <a href="#" onclick="window.pwned=4">b</a>' }),
    delta({
      tool_calls: [
        {
          index: 0,
          id: "call_1",
          type: "function",
          function: { name: "get_weather", arguments: '{"city":' },
        },
      ],
    }),
    delta({ tool_calls: [{ index: 0, function: { arguments: ' "Paris"}' } }] }),
    delta({}, "tool_calls"),
    {
      ...head,
      choices: [],
      usage: { prompt_tokens: 9, completion_tokens: 30, total_tokens: 39 },
      timings: { predicted_per_second: 42 },
    },
  ];
  await p.route("**/v1/chat/completions", (route) =>
    route.fulfill({
      status: 200,
      contentType: "text/event-stream",
      body: `${chunks.map((c) => `data: ${JSON.stringify(c)}\n\n`).join("")}data: [DONE]\n\n`,
    }),
  );
  const errors: string[] = [];
  p.on("pageerror", (e) => errors.push(e.message));
  await p.goto(`${fx.served.url}/`);
  await p.locator("#key").fill(KEY);
  await p.locator("#input").fill("Show me everything.");
  await p.locator("#input").press("Enter");
  const reply = p.locator(".msg.assistant[data-state=done]");
  await reply.waitFor();
  const body = reply.locator(".body");
  assert.equal(await body.locator("h1").textContent(), "Llamas");
  assert.equal(await body.locator("strong").textContent(), "woolly");
  assert.equal(await body.locator("p code").textContent(), "calm");
  assert.equal(await body.locator("pre code").textContent(), "const herd = 3;\n");
  assert.equal(await body.locator("script").count(), 0);
  assert.equal(await body.locator("[onerror], [onclick]").count(), 0);
  assert.equal(await body.locator('a[href^="javascript"]').count(), 0);
  await p.waitForFunction(() => [...document.querySelectorAll("img")].every((i) => i.complete));
  await body.locator("a", { hasText: "b" }).click();
  assert.equal(await p.evaluate(() => (window as unknown as { pwned?: number }).pwned), undefined);
  const call = reply.locator(".tool-call");
  assert.equal(await call.locator(".name").textContent(), "tool call: get_weather");
  assert.equal(await call.locator("pre").textContent(), '{"city": "Paris"}');
  assert.match(
    (await reply.locator(".stats").textContent()) ?? "",
    /^30 tokens · 42\.0 tok\/s · first token \d+ ms · tool_calls$/,
  );
  await screenshot(p, "web-chat-markdown.png");
  assert.deepEqual(errors, []);
  await ctx.close();
});
