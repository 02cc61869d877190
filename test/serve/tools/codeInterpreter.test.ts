// The built-in code interpreter of `herd serve --code-interpreter`, over HTTP with the official `openai`
// client, against a scripted engine (a fake EngineClient that answers each prompt with given tokens, so no
// test waits on a random model writing Python): the prompt is Meta's Llama 3.1 code-interpreter example
// byte for byte; a `<|python_tag|>print(6*7)<|eom_id|>` reply really runs in the sandbox and the model's
// next prompt carries 42 in the ipython message (the scripted model answers with what it reads there);
// Meta's own example reply (a syntax error) is reported as a failure; streaming marks the call before and
// after it runs; hostile code (network, writing outside /tmp, a fork bomb, an endless loop) is contained,
// reported as failed and counted on /metrics while the server goes on serving; rounds are bounded; output
// is cut with a marker; without the flag, with a request's own tools, or with <|eot_id|>, nothing runs.
// Once through the real engine too (the tiny random model, its replies forced by a token constraint): the
// engine's <|eom_id|> stop starts the run, and round 2's prompt comes from the prefix cache.
// Skipped, saying why, where bubblewrap cannot run; the refusal at start-up runs everywhere.
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer as netServer, type Server } from "node:net";
import { constants, tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import type { FastifyInstance } from "fastify";
import OpenAI from "openai";
import { getBackend, setBackend } from "../../../src/backends/index.js";
import { SandboxUnavailableError, sandboxCheck } from "../../../src/eval/code/sandbox.js";
import { tiktokenCodec } from "../../../src/generate/codec.js";
import type { ConstraintFactory, TokenConstraint } from "../../../src/serve/contracts.js";
import { type EngineClient, LocalEngineClient } from "../../../src/serve/engine/client.js";
import { Engine, type RequestListener } from "../../../src/serve/engine/engine.js";
import { type EngineStats, type GenerationRequest, NO_TIMINGS } from "../../../src/serve/engine/types.js";
import { createServer, serve } from "../../../src/serve/index.js";
import {
  CodeInterpreter,
  type CodeInterpreterOptions,
  PythonTagCallStream,
} from "../../../src/serve/tools/codeInterpreter.js";
import { chatMessages } from "../../../src/serve/tools/prompt.js";
import { LlamaToolCallStream } from "../../../src/serve/tools/stream.js";
import { Tokenizer } from "../../../src/tokenizer/index.js";
import { EOM, EOT, PYTHON_TAG } from "../../../src/tokenizer/specialTokens.js";
import { repoPath } from "../../helpers.js";
import { tinyLlama3 } from "../fixture.js";

const why = await sandboxCheck();
const skip = why ?? false;
const tok = Tokenizer.llama3();
const metaFormats = JSON.parse(
  readFileSync(repoPath("test", "fixtures", "tokenizer", "prompt-formats.json"), "utf8"),
) as { prompts: Record<string, string>; responses: Record<string, string> };

type Reply = { ids: number[]; stopId: number | null };
const code = (src: string, stop = EOM): Reply => ({
  ids: [tok.special(PYTHON_TAG), ...tok.encode(src)],
  stopId: tok.special(stop),
});
const say = (text: string): Reply => ({ ids: tok.encode(text), stopId: tok.special(EOT) });

/** The last ipython message of a prompt (what the server fed back), or null. */
function lastIpython(prompt: string): string | null {
  const all = [
    ...prompt.matchAll(/<\|start_header_id\|>ipython<\|end_header_id\|>\n\n([\s\S]*?)<\|eot_id\|>/g),
  ];
  return all.at(-1)?.[1] ?? null;
}

/** A model that answers each prompt (decoded) with a scripted reply, a few tokens per step. */
class ScriptedEngine implements EngineClient {
  readonly info = { contextLength: 8192, vocabSize: 128256, parallel: 4, blockSize: 16 };
  readonly prompts: string[] = [];
  constructor(public script: (prompt: string) => Reply) {}

  async submit(req: GenerationRequest, listener: RequestListener): Promise<() => void> {
    const prompt = tok.decode(req.prompt);
    this.prompts.push(prompt);
    const reply = this.script(prompt);
    const ids = reply.ids.slice(0, req.maxTokens);
    let cancelled = false;
    let at = 0;
    const step = () => {
      if (cancelled) return;
      if (at < ids.length) {
        listener.onTokens(ids.slice(at, at + 3).map((id) => ({ id })));
        at += 3;
        setImmediate(step);
        return;
      }
      const full = ids.length === reply.ids.length;
      listener.onDone({
        finishReason: full ? "stop" : "length",
        stopId: full ? reply.stopId : null,
        promptTokens: req.prompt.length,
        completionTokens: ids.length,
        cachedTokens: 0,
        timings: { ...NO_TIMINGS },
      });
    };
    setImmediate(step);
    return () => {
      cancelled = true;
    };
  }

  async stats(): Promise<EngineStats> {
    return {
      requestsTotal: 0,
      requestsRejected: 0,
      promptTokensTotal: 0,
      cachedTokensTotal: 0,
      generatedTokensTotal: 0,
      queueDepth: 0,
      active: 0,
      ttftSum: 0,
      ttftCount: 0,
      ttftBuckets: [],
      tokensPerSecond: 0,
      kvBlocksTotal: 0,
      kvBlocksUsed: 0,
      prefixBlocksCached: 0,
    };
  }

  async close(): Promise<void> {}
}

/** Round 1 a code call, then the answer the model reads off the ipython message. */
const answerAfter = (src: string) => (prompt: string) => {
  const fed = lastIpython(prompt);
  if (fed === null) return code(src);
  return say(`The answer is ${/\[stdout\]\n([\s\S]*?)\n\[\/stdout\]/.exec(fed)?.[1] ?? "unknown"}.`);
};

interface Rig {
  engine: ScriptedEngine;
  client: OpenAI;
  url: string;
  app: FastifyInstance;
}
const rigs: Rig[] = [];

async function rig(
  script: (p: string) => Reply,
  interp: CodeInterpreterOptions | null,
  real: EngineClient | null = null,
): Promise<Rig> {
  const engine = new ScriptedEngine(script);
  const codeInterpreter = interp ? await CodeInterpreter.create(interp) : undefined;
  const app = createServer({
    engine: real ?? engine,
    codec: tiktokenCodec(tok),
    modelName: "scripted",
    stopIds: [128001, 128008, 128009],
    bosId: 128000,
    features: {
      toolDialog: (m, t) => chatMessages(m as never, t as never),
      toolStream: () => new LlamaToolCallStream(),
      structuredOutput: real !== null,
      ...(codeInterpreter ? { codeInterpreter } : {}),
    },
  });
  await app.listen({ host: "127.0.0.1", port: 0 });
  const url = `http://127.0.0.1:${(app.server.address() as { port: number }).port}`;
  const r = { engine, app, url, client: new OpenAI({ baseURL: `${url}/v1`, apiKey: "x", maxRetries: 0 }) };
  rigs.push(r);
  return r;
}

after(async () => {
  for (const r of rigs) await r.app.close();
});

type Ran = {
  id: string;
  code: string;
  status: string;
  stdout: string;
  stderr: string;
  exit_code: number | null;
  timed_out: boolean;
  duration_ms: number;
  outputs: { type: string; logs: string }[];
};
const ranOf = (m: unknown) =>
  ((m as { code_interpreter_calls?: Ran[] }).code_interpreter_calls ?? []) as Ran[];
const user = (content: string) => [{ role: "user" as const, content }];
/** Time enough for Python to start in the sandbox on a loaded machine (2 cores shared by many). */
const ROOMY: CodeInterpreterOptions = { limits: { timeoutS: 60 } };
const META_QUESTION = "Write code to check if number is prime, use that to see if the number 7 is prime";

test("a <|python_tag|> call runs in the sandbox; its output goes back as ipython and into the answer", {
  skip,
}, async () => {
  const { engine, client } = await rig(answerAfter("print(6*7)"), ROOMY);
  const r = await client.chat.completions.create({
    model: "scripted",
    messages: user(META_QUESTION),
    max_tokens: 100,
  });
  // The prompt is Meta's Llama 3.1 code-interpreter example, byte for byte.
  assert.equal(engine.prompts[0], metaFormats.prompts.code_interpreter);
  assert.equal(engine.prompts.length, 2);
  assert.equal(
    engine.prompts[1],
    `${engine.prompts[0]}${PYTHON_TAG}print(6*7)${EOM}<|start_header_id|>ipython<|end_header_id|>\n\ncompleted\n[stdout]\n42\n[/stdout]${EOT}<|start_header_id|>assistant<|end_header_id|>\n\n`,
  );
  const c = r.choices[0]!;
  assert.equal(c.message.content, "The answer is 42.");
  assert.equal(c.finish_reason, "stop");
  assert.equal(c.message.tool_calls, undefined);
  const [ran, ...more] = ranOf(c.message);
  assert.deepEqual(more, []);
  assert.equal(ran!.code, "print(6*7)");
  assert.equal(ran!.status, "completed");
  assert.equal(ran!.stdout, "42\n");
  assert.equal(ran!.exit_code, 0);
  assert.equal(ran!.timed_out, false);
  assert.equal(ran!.outputs[0]!.logs, "completed\n[stdout]\n42\n[/stdout]");
  const round1 = code("print(6*7)").ids.length;
  assert.equal(r.usage!.completion_tokens, round1 + say("The answer is 42.").ids.length);
});

test("Meta's own example reply (a syntax error) is reported as a failed call with the traceback", {
  skip,
}, async () => {
  const reply = metaFormats.responses.code_interpreter!;
  const src = reply.slice(PYTHON_TAG.length, -EOM.length);
  const { engine, client } = await rig((p) => (lastIpython(p) === null ? code(src) : say("Sorry.")), ROOMY);
  const r = await client.chat.completions.create({
    model: "scripted",
    messages: user(META_QUESTION),
    max_tokens: 200,
  });
  const [ran] = ranOf(r.choices[0]!.message);
  assert.equal(ran!.code, src);
  assert.equal(ran!.status, "failed");
  assert.notEqual(ran!.exit_code, 0);
  assert.match(ran!.stderr, /SyntaxError/);
  assert.match(
    lastIpython(engine.prompts[1]!)!,
    /^completed\n\[stderr\]\n[\s\S]*SyntaxError[\s\S]*\[\/stderr\]$/,
  );
  assert.equal(r.choices[0]!.message.content, "Sorry.");
});

test("streaming: the call is marked before and after it runs; the answer streams as content", {
  skip,
}, async () => {
  const { client } = await rig(answerAfter("print(6*7)"), ROOMY);
  const stream = await client.chat.completions.create({
    model: "scripted",
    messages: user("What is 6 times 7?"),
    stream: true,
    stream_options: { include_usage: true },
  });
  let content = "";
  const events: Ran[] = [];
  let finish: string | null = null;
  let toolCalls = 0;
  for await (const chunk of stream) {
    const d = chunk.choices[0]?.delta;
    content += d?.content ?? "";
    events.push(...((d as { code_interpreter_calls?: Ran[] } | undefined)?.code_interpreter_calls ?? []));
    toolCalls += d?.tool_calls?.length ?? 0;
    finish = chunk.choices[0]?.finish_reason ?? finish;
  }
  assert.equal(content, "The answer is 42.");
  assert.equal(toolCalls, 0);
  assert.equal(finish, "stop");
  assert.deepEqual(
    events.map((e) => [e.status, e.code, e.stdout]),
    [
      ["interpreting", "print(6*7)", undefined],
      ["completed", "print(6*7)", "42\n"],
    ],
  );
  assert.equal(events[0]!.id, events[1]!.id);
});

test("hostile code is contained, reported as failed and counted; the server goes on serving", {
  skip,
}, async () => {
  const outside = mkdtempSync(join(tmpdir(), "herd-ci-canary-"));
  const canary = join(outside, "canary");
  mkdirSync(canary);
  writeFileSync(join(canary, "keep.txt"), "canary\n");
  let connections = 0;
  const host: Server = netServer((s) => {
    connections++;
    s.destroy();
  });
  await new Promise<void>((r) => host.listen(0, "127.0.0.1", r));
  const port = (host.address() as { port: number }).port;
  const hostile: Record<string, string> = {
    network: `import socket\nsocket.create_connection(("127.0.0.1", ${port}), timeout=1).sendall(b"x")`,
    outside: `import shutil\nshutil.rmtree(${JSON.stringify(canary)}, ignore_errors=True)\nopen(${JSON.stringify(join(canary, "new.txt"))}, "w").write("x")`,
    forkBomb: "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass",
    endlessLoop: "while True:\n    pass",
  };
  let snippet = "";
  const { client, url } = await rig((p) => (lastIpython(p) === null ? code(snippet) : say("done")), {
    limits: { timeoutS: 15, cpuS: 2, processes: 4 },
  });
  const counter = async (name: string) =>
    Number(new RegExp(`^${name} (\\S+)$`, "m").exec(await (await fetch(`${url}/metrics`)).text())?.[1]);
  try {
    for (const [name, src] of Object.entries(hostile)) {
      snippet = src;
      const r = await client.chat.completions.create({
        model: "scripted",
        messages: user(name),
        max_tokens: 400,
      });
      const [ran] = ranOf(r.choices[0]!.message);
      assert.equal(ran?.status, "failed", `${name}: ${JSON.stringify(ran)}`);
      assert.equal(r.choices[0]!.message.content, "done", name);
      if (name === "forkBomb" || name === "endlessLoop")
        assert.ok(
          ran!.timed_out ||
            ran!.exit_code === 128 + constants.signals.SIGKILL ||
            ran!.exit_code === 128 + constants.signals.SIGXCPU,
          `${name}: ${JSON.stringify(ran)}`,
        );
      else assert.match(ran!.stderr, /ConnectionRefusedError|FileNotFoundError|PermissionError/, name);
    }
    assert.equal(connections, 0);
    assert.deepEqual(readdirSync(canary), ["keep.txt"]);
    assert.equal(readFileSync(join(canary, "keep.txt"), "utf8"), "canary\n");
    assert.equal(await counter("herd_code_interpreter_calls_total"), 4);
    assert.equal(await counter("herd_code_interpreter_failures_total"), 4);
    assert.ok((await counter("herd_code_interpreter_seconds_total")) >= 4, "two runs used 2 CPU seconds");
    snippet = "print(6*7)";
    const ok = await client.chat.completions.create({
      model: "scripted",
      messages: user("again"),
      max_tokens: 50,
    });
    assert.equal(ranOf(ok.choices[0]!.message)[0]!.stdout, "42\n");
    assert.equal(await counter("herd_code_interpreter_failures_total"), 4);
  } finally {
    host.close();
    rmSync(outside, { recursive: true, force: true });
  }
});

test("rounds are bounded: past --code-interpreter-rounds a code call comes back as a tool call", {
  skip,
}, async () => {
  const { engine, client } = await rig(() => code("print(1)"), { ...ROOMY, rounds: 2 });
  const r = await client.chat.completions.create({
    model: "scripted",
    messages: user("loop"),
    max_tokens: 500,
  });
  const c = r.choices[0]!;
  assert.equal(engine.prompts.length, 3);
  assert.equal(ranOf(c.message).length, 2);
  assert.equal(c.finish_reason, "tool_calls");
  const call = c.message.tool_calls?.[0] as { function: { name: string; arguments: string } } | undefined;
  assert.equal(call?.function.name, "code_interpreter");
  assert.deepEqual(JSON.parse(call!.function.arguments), { code: "print(1)" });
});

test("long output is cut with a marker, in the report and in what the model reads", { skip }, async () => {
  const { engine, client } = await rig(answerAfter("print('x' * 5000)"), { ...ROOMY, outputChars: 100 });
  const r = await client.chat.completions.create({
    model: "scripted",
    messages: user("long"),
    max_tokens: 100,
  });
  const [ran] = ranOf(r.choices[0]!.message);
  assert.equal(ran!.stdout, `${"x".repeat(100)}\n[output truncated: 4901 more characters]`);
  assert.match(
    lastIpython(engine.prompts[1]!)!,
    /^completed\n\[stdout\]\nx{100}\n\[output truncated: 4901 more characters\]\n\[\/stdout\]$/,
  );
});

test("nothing runs without the flag, with the request's own tools, or when the call ends with <|eot_id|>", {
  skip,
}, async () => {
  const off = await rig(() => code("print(6*7)"), null);
  const a = await off.client.chat.completions.create({
    model: "scripted",
    messages: user("hi"),
    max_tokens: 50,
  });
  assert.equal(off.engine.prompts.length, 1);
  assert.doesNotMatch(off.engine.prompts[0]!, /Environment: ipython/);
  assert.deepEqual(ranOf(a.choices[0]!.message), []);
  assert.equal(a.choices[0]!.message.tool_calls, undefined);

  const on = await rig(() => code("print(6*7)"), ROOMY);
  const tools = [
    { type: "function" as const, function: { name: "get_time", parameters: { type: "object" } } },
  ];
  const b = await on.client.chat.completions.create({
    model: "scripted",
    messages: user("hi"),
    tools,
    max_tokens: 50,
  });
  assert.equal(on.engine.prompts.length, 1);
  assert.deepEqual(ranOf(b.choices[0]!.message), []);
  assert.equal(b.choices[0]!.finish_reason, "tool_calls");
  assert.equal(
    (b.choices[0]!.message.tool_calls![0] as { function: { name: string } }).function.name,
    "code_interpreter",
  );

  on.engine.script = () => code("print(6*7)", EOT);
  const c = await on.client.chat.completions.create({
    model: "scripted",
    messages: user("hi"),
    max_tokens: 50,
  });
  assert.equal(on.engine.prompts.length, 2);
  assert.deepEqual(ranOf(c.choices[0]!.message), []);
  assert.equal(c.choices[0]!.finish_reason, "tool_calls");
  const metrics = await (await fetch(`${on.url}/metrics`)).text();
  assert.match(metrics, /^herd_code_interpreter_calls_total 0$/m);
});

test("without tools of its own, only <|python_tag|> begins a call, however the reply is split", () => {
  const cases: [string, string, unknown[]][] = [
    ['{"name": "get_time", "parameters": {}}', '{"name": "get_time", "parameters": {}}', []],
    ["<function=f>{}</function> <|python", "<function=f>{}</function> <|python", []],
    [`Let me compute.${PYTHON_TAG}print(6*7)`, "Let me compute.", [{ code: "print(6*7)" }]],
    [`${PYTHON_TAG}brave_search.call(query="gold")`, "", [{ query: "gold" }]],
  ];
  for (const [reply, content, args] of cases)
    for (let cut = 0; cut <= reply.length; cut++) {
      const s = new PythonTagCallStream();
      const parts = [s.push(reply.slice(0, cut)), s.push(reply.slice(cut)), s.end()];
      assert.equal(parts.map((p) => p.content).join(""), content, `${reply} cut at ${cut}`);
      assert.deepEqual(
        parts.flatMap((p) => p.calls).map((c) => c.arguments),
        args,
      );
    }
});

/** Forces one scripted reply per request (its ids, then its stop id), in the order requests come. */
class ForcedReplies implements ConstraintFactory {
  constructor(private readonly replies: Reply[]) {}
  json(): TokenConstraint {
    const { ids, stopId } = this.replies.shift()!;
    let at = 0;
    return {
      mask: () => {
        const m = new Uint8Array(128256);
        m[at < ids.length ? ids[at]! : stopId!] = 1;
        return m;
      },
      accept: () => {
        at++;
      },
      get complete() {
        return at >= ids.length;
      },
    };
  }
}

test("with the real engine (replies forced by a token constraint): round 2 reuses round 1 from the prefix cache", {
  skip,
}, async (t) => {
  const previous = getBackend().name;
  setBackend("js");
  const model = tinyLlama3();
  try {
    const engine = new LocalEngineClient(
      new Engine(model, { parallel: 2 }),
      new ForcedReplies([code("print(6*7)"), say("Done.")]),
    );
    const { client } = await rig(() => say("unused"), ROOMY, engine);
    const r = await client.chat.completions.create({
      model: "scripted",
      messages: [
        { role: "system", content: "You are a careful assistant who checks arithmetic with code." },
        ...user("What is 6*7?"),
      ],
      max_tokens: 40,
      temperature: 0,
      response_format: { type: "json_object" },
    });
    const c = r.choices[0]!;
    assert.equal(c.message.content, "Done.");
    assert.equal(ranOf(c.message)[0]?.stdout, "42\n");
    const details = r.usage!.prompt_tokens_details as { cached_tokens: number };
    t.diagnostic(`prompt tokens ${r.usage!.prompt_tokens} over two rounds, ${details.cached_tokens} cached`);
    assert.ok(details.cached_tokens >= 32, `cached ${details.cached_tokens} of ${r.usage!.prompt_tokens}`);
  } finally {
    model.dispose();
    setBackend(previous);
  }
});

test("herd serve --code-interpreter refuses to start where code cannot be sandboxed", async () => {
  await assert.rejects(
    serve({ model: "/nonexistent-model", port: 0, codeInterpreter: { python: "/nonexistent/python3" } }),
    (e: Error) => e instanceof SandboxUnavailableError && /--code-interpreter/.test(e.message),
  );
});
