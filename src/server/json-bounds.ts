// Bounds on the free-form JSON a client passes through to the chat template (chat_template_kwargs, tool_calls):
// the template interpreter converts and walks such values recursively, so a value nested thousands deep would
// exhaust the stack inside it. Checked here without recursion, before rendering.
import { badRequest } from './errors.js';

export interface JsonBounds {
  /** Nesting levels of objects and arrays; the value itself is level 1. */
  maxDepth: number;
  /** Values in all (objects, arrays, and the scalars in them). */
  maxValues: number;
}

/** Generous for real template arguments (flags, documents, tool schemas), small enough for any stack. */
export const TEMPLATE_VALUE_BOUNDS: JsonBounds = { maxDepth: 32, maxValues: 100_000 };

/** Throws a 400 naming `param` when `value` nests deeper or holds more values than `bounds` allow. */
export function checkJsonBounds(value: unknown, param: string, bounds: JsonBounds = TEMPLATE_VALUE_BOUNDS): void {
  const pending: Array<{ value: unknown; depth: number }> = [{ value, depth: 1 }];
  let seen = 0;
  while (pending.length > 0) {
    const { value: v, depth } = pending.pop()!;
    if (++seen > bounds.maxValues) throw badRequest(`${param} holds more than ${bounds.maxValues} values`, param);
    if (typeof v !== 'object' || v === null) continue;
    if (depth > bounds.maxDepth) throw badRequest(`${param} is nested more than ${bounds.maxDepth} levels deep`, param);
    for (const child of Array.isArray(v) ? v : Object.values(v)) pending.push({ value: child, depth: depth + 1 });
  }
}
