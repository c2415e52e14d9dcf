// Building blocks of the server fuzz: the exact bytes of an HTTP request, JSON bodies mutated at a path (including
// values JSON.stringify cannot write, such as 1e400), and a seeded chooser over the project's own PRNG.
import { Rng } from '../../src/engine/rng.js';

/** A JSON value, or text to splice into the body verbatim where a value goes (`1e400`, `"\ud800"`, `01`). */
export type Value = unknown;
export class RawJson {
  constructor(readonly text: string) {}
}

export type Path = readonly (string | number)[];

/** Seeded choices; the same seed gives the same cases on every run. */
export class Chooser {
  private readonly rng: Rng;
  constructor(seed: number) {
    this.rng = Rng.fromSeed(seed);
  }
  /** An integer in [0, n). */
  int(n: number): number {
    return this.rng.nextUint32() % n;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
  chance(p: number): boolean {
    return this.rng.nextUint32() / 2 ** 32 < p;
  }
}

export interface RequestSpec {
  method: string;
  /** The request-target exactly as sent. */
  path: string;
  body?: Buffer | string;
  /** Replaces the default `application/json` when there is a body; null sends none. */
  contentType?: string | null;
  /** Sent after the defaults, in order; a name may repeat. */
  headers?: readonly [string, string][];
  /** Leave out Host / Content-Length (default: send them). */
  noHost?: boolean;
  noLength?: boolean;
  version?: string;
}

/** The request's bytes. `Connection: close` throughout, so the server ends every exchange. */
export function requestBytes(r: RequestSpec): Buffer {
  const body = r.body === undefined ? undefined : Buffer.isBuffer(r.body) ? r.body : Buffer.from(r.body, 'utf8');
  const lines = [`${r.method} ${r.path} ${r.version ?? 'HTTP/1.1'}`];
  if (!r.noHost) lines.push('Host: 127.0.0.1');
  lines.push('Connection: close');
  if (body !== undefined) {
    const ct = r.contentType === undefined ? 'application/json' : r.contentType;
    if (ct !== null) lines.push(`Content-Type: ${ct}`);
    if (!r.noLength) lines.push(`Content-Length: ${body.length}`);
  }
  for (const [k, v] of r.headers ?? []) lines.push(`${k}: ${v}`);
  const head = Buffer.from(`${lines.join('\r\n')}\r\n\r\n`, 'latin1');
  return body === undefined ? head : Buffer.concat([head, body]);
}

/** Every path inside `v` (objects' keys, arrays' indexes), parents before children; the root is not included. */
export function allPaths(v: unknown, prefix: Path = []): Path[] {
  const out: Path[] = [];
  if (v instanceof RawJson) return out;
  if (Array.isArray(v)) {
    v.forEach((x, i) => out.push([...prefix, i], ...allPaths(x, [...prefix, i])));
  } else if (v !== null && typeof v === 'object') {
    for (const [k, x] of Object.entries(v)) out.push([...prefix, k], ...allPaths(x, [...prefix, k]));
  }
  return out;
}

export function getAt(v: unknown, path: Path): unknown {
  let at = v;
  for (const p of path) at = at !== null && typeof at === 'object' ? (at as Record<string | number, unknown>)[p] : undefined;
  return at;
}

/** A deep copy that keeps RawJson values as they are (structuredClone would turn them into plain objects). */
function clone(v: unknown): unknown {
  if (v instanceof RawJson || v === null || typeof v !== 'object') return v;
  if (Array.isArray(v)) return v.map(clone);
  return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, clone(x)]));
}

/** A deep copy with the value at `path` replaced (`undefined`: removed). */
export function setAt(v: unknown, path: Path, value: Value): unknown {
  if (path.length === 0) return value;
  const copy = clone(v) as Record<string | number, unknown>;
  let parent: Record<string | number, unknown> = copy;
  for (const p of path.slice(0, -1)) parent = parent[p] as Record<string | number, unknown>;
  const last = path[path.length - 1]!;
  if (value === undefined) {
    if (Array.isArray(parent)) parent.splice(last as number, 1);
    else delete parent[last];
  } else parent[last] = value;
  return copy;
}

/** JSON text of `v`, with every RawJson spliced in verbatim. */
export function toJson(v: unknown): string {
  const raws: string[] = [];
  const text = JSON.stringify(v, (_k, x: unknown) => {
    if (x instanceof RawJson) {
      raws.push(x.text);
      return `\u0001RAW${raws.length - 1}\u0001`;
    }
    return x;
  });
  return (text ?? '').replace(/"\\u0001RAW(\d+)\\u0001"/g, (_m, i: string) => raws[Number(i)]!);
}

/** `{"a":{"a":…}}` or `[[…]]`, `depth` levels, around `leaf`. Built as text: no recursion, any depth. */
export function nested(kind: 'object' | 'array', depth: number, leaf = '1'): RawJson {
  const open = kind === 'object' ? '{"a":' : '[';
  const close = kind === 'object' ? '}' : ']';
  return new RawJson(open.repeat(depth) + leaf + close.repeat(depth));
}

/** Adds `"key": value` (raw text) to a JSON object's text, after its existing members. */
export function withExtraMember(objectJson: string, key: string, valueJson: string): string {
  const body = objectJson.trimEnd();
  if (!body.endsWith('}')) return body;
  const empty = /^\{\s*\}$/.test(body);
  return `${body.slice(0, -1)}${empty ? '' : ','}${JSON.stringify(key)}:${valueJson}}`;
}

/** A readable, bounded rendering of request bytes for a report. */
export function describeBytes(b: Buffer, max = 300): string {
  const s = b.subarray(0, max).toString('latin1');
  const shown = JSON.stringify(s).slice(1, -1);
  return b.length > max ? `${shown}… (${b.length} bytes)` : shown;
}
