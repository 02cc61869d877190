// `tool_choice: "required"` or a named function as a structured-output node: the reply must be one call
// in Llama 3.1's JSON tool-call shape, `{"name": "<tool>", "parameters": {…}}`, whose parameters match the
// chosen tool's JSON Schema (the name decides which schema applies). The spacing is fixed as Meta's
// reference writes the call (Python json.dumps), so the model follows the shape it was trained on; the
// ToolCallStream (src/serve/tools/) then reads it back as a call. "auto" and "none" constrain nothing.
import type { OpenAITool, OpenAIToolChoice } from "../tools/openai.js";
import { ANY_OBJECT, compileSchema, literal, type Node, SchemaError } from "./schema.js";

const enc = new TextEncoder();

/** The node of a forced tool call, or null when the choice forces none. Throws SchemaError. */
export function toolChoiceNode(
  tools: readonly OpenAITool[],
  choice: OpenAIToolChoice | undefined,
): Node | null {
  if (choice === undefined || choice === "auto" || choice === "none") return null;
  let chosen = tools;
  if (typeof choice === "object") {
    chosen = tools.filter((t) => t.function.name === choice.function.name);
    if (chosen.length === 0) throw new SchemaError("tool_choice", `no tool named '${choice.function.name}'`);
  }
  if (chosen.length === 0) throw new SchemaError("tool_choice", "'required' needs at least one tool");
  const names = new Set<string>();
  const prefixes: Uint8Array[] = [];
  const next: Node[] = [];
  chosen.forEach((t, i) => {
    const name = t.function.name;
    if (names.has(name)) return;
    names.add(name);
    const params = t.function.parameters;
    let node: Node;
    try {
      node = params === undefined ? ANY_OBJECT : compileSchema(params);
    } catch (e) {
      if (e instanceof SchemaError)
        throw new SchemaError(`tools[${i}].function.parameters${e.path.slice(1)}`, e.reason);
      throw e;
    }
    prefixes.push(enc.encode(`{"name": ${JSON.stringify(name)}, "parameters": `));
    next.push({ kind: "seq", parts: [node, literal("}")] });
  });
  return { kind: "branch", prefixes, next };
}
