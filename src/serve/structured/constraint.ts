// Structured output (response_format json_object / json_schema, and forced tool calls): a ConstraintFactory
// over one vocabulary builds its tries once, and each request gets a JsonConstraint that walks them from
// its automaton state. The mask allows exactly the tokens whose bytes keep the text a valid prefix of a
// value matching the schema (special tokens never; the stop ids once the value is complete), so sampling
// from it yields text that JSON.parse accepts and the schema validates. A top-level number may go on with
// more digits after it is complete; every other complete value allows only the stop ids.
import type { ConstraintFactory, TokenConstraint } from "../contracts.js";
import type { OpenAITool, OpenAIToolChoice } from "../tools/openai.js";
import { accepting, closer, feed, initial, inPlainString, type State } from "./automaton.js";
import { ANY_OBJECT, compileSchema, type Node } from "./schema.js";
import { toolChoiceNode } from "./toolChoice.js";
import { type ConstraintVocab, plainTokens, VocabTrie } from "./trie.js";

export class JsonConstraintFactory implements ConstraintFactory {
  readonly all: VocabTrie;
  /** tokens that are not plain string text */
  readonly rest: VocabTrie;
  readonly plain: Uint8Array;
  /** single-byte token of each byte (-1 when none), for `finishingToken` */
  readonly byteToken: Int32Array;

  constructor(readonly vocab: ConstraintVocab) {
    const ids = [...Array(vocab.size).keys()];
    this.plain = plainTokens(vocab.bytes);
    this.all = new VocabTrie(vocab.bytes, ids);
    this.rest = new VocabTrie(
      vocab.bytes,
      ids.filter((id) => !this.plain[id]),
    );
    this.byteToken = new Int32Array(256).fill(-1);
    vocab.bytes.forEach((b, id) => {
      if (b && b.length === 1 && this.byteToken[b[0]!]! < 0) this.byteToken[b[0]!] = id;
    });
  }

  /** `response_format`: json_schema's schema, or null for any JSON object (json_object). Throws SchemaError. */
  json(schema: object | null): JsonConstraint {
    return this.fromNode(schema === null ? ANY_OBJECT : compileSchema(schema));
  }

  /** `tool_choice` "required" or a named function: one call of a tool (null for "auto"/"none"). */
  toolCall(tools: readonly OpenAITool[], choice: OpenAIToolChoice | undefined): JsonConstraint | null {
    const node = toolChoiceNode(tools, choice);
    return node && this.fromNode(node);
  }

  fromNode(node: Node): JsonConstraint {
    return new JsonConstraint(this, initial(node));
  }
}

export class JsonConstraint implements TokenConstraint {
  private stopped = false;

  constructor(
    private readonly factory: JsonConstraintFactory,
    private st: State,
  ) {}

  get complete(): boolean {
    return accepting(this.st);
  }

  /** The automaton state (for tests and the finishing helper). */
  get state(): State {
    return this.st;
  }

  mask(): Uint8Array {
    const fac = this.factory;
    const m = new Uint8Array(fac.vocab.size);
    if (!this.stopped) {
      if (inPlainString(this.st)) {
        m.set(fac.plain);
        fac.rest.walk(this.st, m);
      } else fac.all.walk(this.st, m);
    }
    if (this.stopped || accepting(this.st)) for (const id of fac.vocab.stopIds) m[id] = 1;
    return m;
  }

  accept(id: number): void {
    const fac = this.factory;
    if (this.stopped) throw new Error(`structured output: token ${id} after the stop token`);
    if (fac.vocab.stopIds.includes(id)) {
      if (!accepting(this.st))
        throw new Error(`structured output: stop token ${id} before the value is complete`);
      this.stopped = true;
      return;
    }
    const bytes = fac.vocab.bytes[id];
    if (!bytes) throw new Error(`structured output: token ${id} is special or unknown`);
    if (inPlainString(this.st) && fac.plain[id]) return;
    const next = feed(this.st, bytes);
    if (!next) throw new Error(`structured output: token ${id} does not continue the JSON value`);
    this.st = next;
  }

  /** A token that moves towards completing the value (a stop id when complete): to close out a reply. */
  finishingToken(): number {
    const b = closer(this.st);
    if (b < 0 || accepting(this.st)) return this.factory.vocab.stopIds[0]!;
    const id = this.factory.byteToken[b]!;
    if (id < 0) throw new Error(`structured output: the vocabulary has no token for byte ${b}`);
    return id;
  }
}

/** Convenience: the factory for a vocabulary. */
export function jsonConstraints(vocab: ConstraintVocab): JsonConstraintFactory {
  return new JsonConstraintFactory(vocab);
}
