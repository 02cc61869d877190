// OpenAI's error object, `{ error: { message, type, param, code } }`, and the checks of a request body
// that produce it: a wrong field is a 400 naming the field (`param`), never a crash or a silent default.

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
    readonly type: string = status === 401
      ? "authentication_error"
      : status === 429
        ? "rate_limit_error"
        : status >= 500
          ? "server_error"
          : "invalid_request_error",
  ) {
    super(message);
  }

  body(): { error: { message: string; type: string; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export type Body = Record<string, unknown>;

export function asBody(x: unknown): Body {
  if (x === null || typeof x !== "object" || Array.isArray(x))
    throw new ApiError(400, "the request body must be a JSON object");
  return x as Body;
}

const bad = (param: string, want: string): never => {
  throw new ApiError(400, `'${param}' must be ${want}`, param, "invalid_type");
};

export function optNumber(b: Body, k: string, min: number, max: number): number | undefined {
  const v = b[k];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isFinite(v)) return bad(k, "a number");
  if (v < min || v > max)
    throw new ApiError(400, `'${k}' must be between ${min} and ${max}`, k, "invalid_value");
  return v;
}

export function optInt(b: Body, k: string, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  const v = optNumber(b, k, min, max);
  if (v !== undefined && !Number.isInteger(v)) return bad(k, "an integer");
  return v;
}

export function optBool(b: Body, k: string): boolean | undefined {
  const v = b[k];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "boolean") return bad(k, "a boolean");
  return v;
}

export function optString(b: Body, k: string): string | undefined {
  const v = b[k];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "string") return bad(k, "a string");
  return v;
}

/** `stop`: a string or a list of up to 4 strings. */
export function stopStrings(b: Body): string[] {
  const v = b.stop;
  if (v === undefined || v === null) return [];
  if (typeof v === "string") return v === "" ? [] : [v];
  if (!Array.isArray(v) || v.some((s) => typeof s !== "string") || v.length > 4)
    return bad("stop", "a string or a list of at most 4 strings");
  return (v as string[]).filter((s) => s !== "");
}

export function optObject(b: Body, k: string): Body | undefined {
  const v = b[k];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "object" || Array.isArray(v)) return bad(k, "an object");
  return v as Body;
}
