// The bottom layer in one import: the HERD_* knobs (declared once, checked before a command starts), the
// package root shipped files are found from, the one seeded random generator, and the declarative config
// schema (validation, --help and the documentation's tables come from it).
export * from "./knobs.js";
export * from "./paths.js";
export * from "./rng.js";
export {
  type CliValues,
  commandHelp,
  configTable,
  type Field,
  helpText,
  type Infer,
  parseCli,
  type Schema,
  SchemaError,
  UsageError,
  validate,
  validateField,
} from "./schema.js";
