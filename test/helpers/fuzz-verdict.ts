// Judging one fuzz exchange (status, error shape, Allow header) and grouping what was wrong into a bug list:
// one group per category and kind of fault, with a count and the first examples, so a report reads as issues.
import type { FuzzCase, Shape } from './fuzz-cases.js';
import { describeBytes } from './fuzz-requests.js';
import type { RawOutcome, RawResponse } from './raw-http.js';

export interface Fault {
  /** What kind of wrong, stable across cases so they group: "expected 415, got 200", "500: <message>". */
  kind: string;
  /** This case's particulars. */
  detail: string;
}

/** A message with its numbers and quoted values blanked, so one bug's many instances group together. */
function normalized(message: string): string {
  return message.replace(/"[^"]*"|'[^']*'/g, '…').replace(/\d+/g, 'N').slice(0, 120);
}

function bodyText(r: RawResponse, max = 200): string {
  const s = r.body.toString('utf8');
  return s.length > max ? `${s.slice(0, max)}…` : s;
}

/** The message a 5xx body carries, in either shape, or its text. */
function errorMessage(r: RawResponse): string {
  try {
    const v = JSON.parse(r.body.toString('utf8')) as { error?: unknown };
    if (typeof v.error === 'string') return v.error;
    const m = (v.error as { message?: unknown } | undefined)?.message;
    if (typeof m === 'string') return m;
  } catch {
    // not JSON
  }
  return r.body.length === 0 ? '(empty body)' : bodyText(r, 80);
}

/** Why `r`'s body is not an error of `shape`, or undefined when it is. */
export function shapeProblem(r: RawResponse, shape: Shape): string | undefined {
  let v: unknown;
  try {
    v = JSON.parse(r.body.toString('utf8'));
  } catch {
    return r.body.length === 0 ? 'empty body' : 'body is not JSON';
  }
  const err = (v as { error?: unknown } | null)?.error;
  if (shape === 'ollama') return typeof err === 'string' ? undefined : 'no string "error"';
  if (typeof err !== 'object' || err === null) return 'no "error" object';
  const e = err as Record<string, unknown>;
  if (typeof e.message !== 'string' || e.message === '') return 'error.message is not a non-empty string';
  if (typeof e.type !== 'string') return 'error.type is not a string';
  if (!('param' in e) || (e.param !== null && typeof e.param !== 'string')) return 'error.param is not string|null';
  if (!('code' in e) || (e.code !== null && typeof e.code !== 'string')) return 'error.code is not string|null';
  return undefined;
}

/** Everything wrong with the server's answer to `c`; empty when it is right. */
export function judge(c: FuzzCase, o: RawOutcome): Fault[] {
  if (o.kind === 'refused') return [{ kind: 'server unreachable', detail: o.detail }];
  if (o.kind === 'timeout') return [{ kind: 'no answer before the timeout', detail: `${o.bytes} bytes received` }];
  if (o.kind === 'closed') {
    return c.mayClose ? [] : [{ kind: 'connection closed without a response', detail: `${o.detail}; ${o.bytes} bytes received` }];
  }
  const r = o.response;
  const faults: Fault[] = [];
  const expected = c.statuses;
  const got = `${r.status} ${bodyText(r, 160)}`;
  if (r.status >= 500 && !expected?.includes(r.status)) {
    faults.push({ kind: `${r.status}: ${normalized(errorMessage(r))}`, detail: got });
  } else if (expected !== undefined && !expected.includes(r.status)) {
    faults.push({ kind: `expected ${expected.join(' or ')}, got ${r.status}`, detail: got });
  } else if (expected === undefined && !(r.status >= 200 && r.status < 300) && !(r.status >= 400 && r.status < 500)) {
    faults.push({ kind: `status ${r.status} is neither 2xx nor 4xx`, detail: got });
  }
  if (r.status >= 400 && c.method !== 'HEAD') {
    const problem = shapeProblem(r, c.shape);
    if (problem !== undefined) faults.push({ kind: `${r.status} not in ${c.shape === 'openai' ? 'OpenAI' : 'Ollama'} error shape (${problem})`, detail: got });
  }
  if (r.status === 405 && c.allow !== undefined) {
    const allow = (r.headers.get('allow') ?? []).join(',').split(',').map((s) => s.trim().toUpperCase());
    const missing = c.allow.filter((m) => !allow.includes(m));
    if (missing.length > 0) faults.push({ kind: `405 without an Allow header naming ${c.allow.join(', ')}`, detail: `Allow: ${allow.join(', ') || '(none)'}` });
  }
  // A 200 stream cannot change its status; a server failure inside it is still a server failure.
  if (r.status === 200 && /"type":"server_error"/.test(r.body.toString('utf8'))) {
    faults.push({ kind: 'server_error event inside a 200 response', detail: bodyText(r, 300) });
  }
  return faults;
}

export interface FaultGroup {
  category: string;
  kind: string;
  count: number;
  examples: { label: string; request: string; response: string }[];
  /** The labels of its first cases, for the JSON report. */
  labels: string[];
}

const EXAMPLES_PER_GROUP = 2;
const LABELS_PER_GROUP = 50;

/** Collects faults into groups (category × kind), in the order they were first seen. */
export class FaultLog {
  private readonly groups = new Map<string, FaultGroup>();

  add(c: FuzzCase, faults: readonly Fault[]): void {
    for (const f of faults) {
      const key = `${c.category}\u0000${f.kind}`;
      let g = this.groups.get(key);
      if (!g) {
        g = { category: c.category, kind: f.kind, count: 0, examples: [], labels: [] };
        this.groups.set(key, g);
      }
      g.count++;
      if (g.labels.length < LABELS_PER_GROUP) g.labels.push(c.label);
      if (g.examples.length < EXAMPLES_PER_GROUP) g.examples.push({ label: c.label, request: describeBytes(c.bytes()), response: f.detail });
    }
  }

  byCategory(category: string): FaultGroup[] {
    return [...this.groups.values()].filter((g) => g.category === category);
  }

  all(): FaultGroup[] {
    return [...this.groups.values()];
  }
}

/** The groups as text: one paragraph per group, its examples indented. */
export function formatGroups(groups: readonly FaultGroup[]): string {
  return groups
    .map((g) => {
      const ex = g.examples.map((e) => `    e.g. ${e.label}\n      request:  ${e.request}\n      response: ${e.response}`).join('\n');
      return `[${g.category}] ${g.kind} — ${g.count} case${g.count === 1 ? '' : 's'}\n${ex}`;
    })
    .join('\n');
}
