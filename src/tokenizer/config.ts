// Small readers for the untyped JSON of tokenizer.json / tokenizer_config.json, and the error for what we don't support.

export type JsonObject = Record<string, unknown>;

export class UnsupportedTokenizerError extends Error {
  constructor(what: string) {
    super(`unsupported tokenizer: ${what}`);
    this.name = 'UnsupportedTokenizerError';
  }
}

export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export function objectList(v: unknown): JsonObject[] {
  return Array.isArray(v) ? v.filter(isObject) : [];
}

export function str(o: JsonObject, key: string): string | undefined {
  const v = o[key];
  return typeof v === 'string' ? v : undefined;
}

export function bool(o: JsonObject, key: string, fallback: boolean): boolean {
  const v = o[key];
  return typeof v === 'boolean' ? v : fallback;
}

/** A token given as a string or as an AddedToken object `{content: ...}` (tokenizer_config.json writes both). */
export function tokenContent(v: unknown): string | undefined {
  if (typeof v === 'string') return v;
  if (isObject(v) && typeof v.content === 'string') return v.content;
  return undefined;
}

/** A Split/Replace pattern: `{String: "..."}` or `{Regex: "..."}`. */
export function patternOf(o: JsonObject, key = 'pattern'): { regex: string } | { literal: string } {
  const p = o[key];
  if (isObject(p)) {
    if (typeof p.Regex === 'string') return { regex: p.Regex };
    if (typeof p.String === 'string') return { literal: p.String };
  }
  if (typeof p === 'string') return { literal: p };
  throw new UnsupportedTokenizerError(`pattern ${JSON.stringify(p)}`);
}
