// The table of schemas the structured-output tests decode against (object, array bounds, enum, const,
// nesting, anyOf, additionalProperties, a recursive $ref).
export const SCHEMAS: [string, object | null][] = [
  ["json_object", null],
  [
    "person",
    {
      type: "object",
      properties: { name: { type: "string" }, age: { type: "integer" }, email: { type: "string" } },
      required: ["name", "age"],
    },
  ],
  ["number", { type: "number" }],
  ["enum", { enum: ["red", "green", "blue", 3, null] }],
  ["const", { const: { a: [1, "x"] } }],
  ["boolean array", { type: "array", items: { type: "boolean" }, minItems: 2, maxItems: 4 }],
  [
    "nested",
    {
      type: "object",
      properties: {
        items: {
          type: "array",
          items: {
            type: "object",
            properties: { id: { type: "integer" }, price: { type: "number" }, tags: { type: "array" } },
            required: ["id", "price"],
          },
          minItems: 1,
        },
        note: { type: ["string", "null"] },
      },
      required: ["items", "note"],
    },
  ],
  [
    "additional",
    {
      type: "object",
      properties: { kind: { enum: ["a", "b"] } },
      required: ["kind", "extra"],
      additionalProperties: { type: "integer" },
    },
  ],
  [
    "anyOf",
    {
      anyOf: [
        { type: "string" },
        { type: "integer" },
        { type: "object", properties: { x: { type: "null" } } },
      ],
    },
  ],
  [
    "$ref tree",
    {
      $defs: {
        node: {
          type: "object",
          properties: { v: { type: "integer" }, kids: { type: "array", items: { $ref: "#/$defs/node" } } },
          required: ["v"],
        },
      },
      $ref: "#/$defs/node",
    },
  ],
  ["string", { type: "string", description: "free text" }],
];
