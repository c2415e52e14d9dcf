// The cases of the server fuzz, by category: body mutations of each POST route's valid body (every field retyped,
// dropped, oversized, filled with junk, nested deep, plus seeded random combinations), malformed JSON, wrong
// content types and methods, odd paths, and raw HTTP that fetch could never send. Each case says what is right.
import { BASE_BODIES, JUNK_STRINGS, MODEL, RETYPES, malformedJsonTexts } from './fuzz-values.js';
import {
  Chooser, RawJson, allPaths, getAt, nested, requestBytes, setAt, toJson, withExtraMember, type Path, type RequestSpec, type Value,
} from './fuzz-requests.js';
import type { RouteEntry } from './route-table.js';

export const CATEGORIES = [
  'field-types', 'field-drops', 'unicode', 'oversize', 'deep-nesting', 'random-mutations', 'json-syntax',
  'content-type', 'method', 'paths', 'http-parser', 'truncated-body',
] as const;
export type Category = (typeof CATEGORIES)[number];

/** The error body a client of that path reads: Ollama's `{"error": string}` under /api/, OpenAI's object elsewhere. */
export type Shape = 'openai' | 'ollama';

export interface FuzzCase {
  category: Category;
  /** What the case does, for the report. */
  label: string;
  /** The request's bytes, built when sent (some are megabytes; thousands held at once would be hundreds). */
  bytes: () => Buffer;
  method: string;
  /** The statuses that are right; absent: any 2xx (the mutation may have left the request valid) or a 4xx. */
  statuses?: readonly number[];
  shape: Shape;
  /** Closing without an answer is also acceptable (the request never completed). */
  mayClose?: boolean;
  /** A 405 must say in `Allow` that these methods are served. */
  allow?: readonly string[];
  halfClose?: boolean;
}

export function shapeFor(path: string): Shape {
  return path.startsWith('/api/') ? 'ollama' : 'openai';
}

interface Route {
  /** A concrete path for the route (`:id` filled in with the served model's name). */
  path: string;
  methods: string[];
}

function concrete(routes: readonly RouteEntry[]): Route[] {
  return routes
    .filter((r) => !r.url.includes('*') && !r.methods.every((m) => m === 'OPTIONS'))
    .map((r) => ({ path: r.url.replace(/:[A-Za-z_]+/g, MODEL), methods: r.methods }));
}

/** The valid body of a POST route; `{}` for a route with none listed yet (it still gets the generic cases). */
function baseBody(path: string): Record<string, unknown> {
  return BASE_BODIES[path] ?? {};
}

function post(category: Category, path: string, label: string, body: () => string | Buffer, extra: Partial<RequestSpec> = {}, expect: Partial<FuzzCase> = {}): FuzzCase {
  return {
    category, label: `POST ${path}: ${label}`, method: 'POST', shape: shapeFor(path),
    bytes: () => requestBytes({ method: 'POST', path, body: body(), ...extra }), ...expect,
  };
}

function valueLabel(v: Value): string {
  const s = v instanceof RawJson ? v.text : (JSON.stringify(v) ?? String(v));
  return s.length > 40 ? `${s.slice(0, 40)}…(${s.length} chars)` : s;
}

function pathLabel(p: Path): string {
  return p.map((x, i) => (typeof x === 'number' ? `[${x}]` : i === 0 ? x : `.${x}`)).join('') || '(body)';
}

function fieldTypes(posts: readonly Route[]): FuzzCase[] {
  const out: FuzzCase[] = [];
  for (const r of posts) {
    const base = baseBody(r.path);
    for (const path of [[], ...allPaths(base)] as Path[]) {
      for (const v of RETYPES) out.push(post('field-types', r.path, `${pathLabel(path)} = ${valueLabel(v)}`, () => toJson(setAt(base, path, v))));
    }
  }
  return out;
}

function fieldDrops(posts: readonly Route[]): FuzzCase[] {
  return posts.flatMap((r) => {
    const base = baseBody(r.path);
    return allPaths(base).map((path) => post('field-drops', r.path, `without ${pathLabel(path)}`, () => toJson(setAt(base, path, undefined))));
  });
}

function stringPaths(base: unknown): Path[] {
  return allPaths(base).filter((p) => typeof getAt(base, p) === 'string');
}

const INVALID_MARK = 'INVALID-UTF8-HERE';
const INVALID_UTF8 = Buffer.from([0x61, 0xff, 0xfe, 0xc0, 0xaf, 0xed, 0xa0, 0x80, 0x62]);

function unicode(posts: readonly Route[]): FuzzCase[] {
  const out: FuzzCase[] = [];
  for (const r of posts) {
    const base = baseBody(r.path);
    for (const path of stringPaths(base)) {
      for (const s of JUNK_STRINGS) out.push(post('unicode', r.path, `${pathLabel(path)} = ${valueLabel(s)}`, () => toJson(setAt(base, path, s))));
      // Bytes that are not UTF-8 at all (0xff, an overlong '/', a UTF-16 surrogate), inside the string.
      const text = Buffer.from(toJson(setAt(base, path, INVALID_MARK)), 'utf8');
      const at = text.indexOf(INVALID_MARK);
      const bad = Buffer.concat([text.subarray(0, at), INVALID_UTF8, text.subarray(at + INVALID_MARK.length)]);
      out.push(post('unicode', r.path, `${pathLabel(path)} holds invalid UTF-8 bytes`, () => bad));
    }
  }
  return out;
}

/** 2^21 + 1 characters with no space: a single pre-tokenized piece longer than BPE is built for. */
const LONG_RUN = 'a'.repeat(2 ** 21 + 1);

function oversize(posts: readonly Route[], bodyLimit: number): FuzzCase[] {
  const out: FuzzCase[] = [];
  for (const r of posts) {
    const base = baseBody(r.path);
    // Two big bodies are enough to see the limit at work; more only cost time.
    if (r.path === '/v1/chat/completions' || r.path === '/api/generate') {
      const huge = (): string => toJson({ ...base, padding: 'x'.repeat(bodyLimit + 1024) });
      // The server may answer 413 and close while the body is still coming: the client then sees a reset, not the 413.
      out.push(post('oversize', r.path, `body over the ${bodyLimit}-byte limit`, huge, {}, { statuses: [413], mayClose: true }));
      out.push(post('oversize', r.path, 'Content-Length over the limit, body never sent', () => '', {
        noLength: true, headers: [['Content-Length', String(bodyLimit * 4)]],
      }, { statuses: [413], mayClose: true, halfClose: true }));
    }
    for (const path of stringPaths(base)) {
      out.push(post('oversize', r.path, `${pathLabel(path)} = 1 MiB string`, () => toJson(setAt(base, path, 'word '.repeat(209_716)))));
      out.push(post('oversize', r.path, `${pathLabel(path)} = one ${LONG_RUN.length}-char run`, () => toJson(setAt(base, path, LONG_RUN))));
    }
    for (const path of allPaths(base).filter((p) => Array.isArray(getAt(base, p)))) {
      const item = (getAt(base, path) as unknown[])[0] ?? 1;
      out.push(post('oversize', r.path, `${pathLabel(path)} with 100000 items`, () => toJson(setAt(base, path, Array(100_000).fill(item)))));
    }
    out.push(post('oversize', r.path, '20000 unknown fields', () => withExtraMember(toJson(base), 'z', `{${Array.from({ length: 20_000 }, (_, i) => `"k${i}":${i}`).join(',')}}`)));
    out.push(post('oversize', r.path, 'a 1 MiB field name', () => withExtraMember(toJson(base), 'k'.repeat(1 << 20), '1')));
    out.push(post('oversize', r.path, 'a 5000-digit number', () => withExtraMember(toJson(base), 'max_tokens', `1${'0'.repeat(5000)}`)));
  }
  return out;
}

function deepNesting(posts: readonly Route[]): FuzzCase[] {
  const out: FuzzCase[] = [];
  for (const r of posts) {
    const base = baseBody(r.path);
    // Each container-typed field, the body itself, and a field no schema names.
    const fields: Path[] = [['zz_unknown'], ...allPaths(base).filter((p) => p.length === 1 && typeof getAt(base, p) === 'object')];
    for (const path of fields) {
      for (const depth of [100, 5000, 100_000]) {
        for (const kind of ['object', 'array'] as const) {
          out.push(post('deep-nesting', r.path, `${pathLabel(path)} = ${kind} nested ${depth} deep`, () => toJson(setAt(base, path, nested(kind, depth)))));
        }
      }
    }
    out.push(post('deep-nesting', r.path, 'the body is an array nested 100000 deep', () => nested('array', 100_000).text));
  }
  return out;
}

/** One random change to a body; text-level changes (duplicate keys, `__proto__`) come after the object-level ones. */
function mutateOnce(c: Chooser, body: unknown): { body: unknown; label: string } {
  const paths = allPaths(body);
  if (paths.length === 0 || c.chance(0.05)) return { body: c.pick(RETYPES), label: 'body replaced' };
  const path = c.pick(paths);
  const old = getAt(body, path);
  switch (c.int(6)) {
    case 0:
      return { body: setAt(body, path, undefined), label: `drop ${pathLabel(path)}` };
    case 1: {
      const v = c.pick(RETYPES);
      return { body: setAt(body, path, v), label: `${pathLabel(path)} = ${valueLabel(v)}` };
    }
    case 2: {
      const v = c.pick(JUNK_STRINGS);
      return { body: setAt(body, path, v), label: `${pathLabel(path)} = ${valueLabel(v)}` };
    }
    case 3:
      return { body: setAt(body, path, [old, old]), label: `${pathLabel(path)} wrapped in a list` };
    case 4: {
      const n = c.pick([2, 50, 2000]);
      const v = Array.isArray(old) ? Array(n).fill(old[0] ?? null) : typeof old === 'string' ? old.repeat(n) : typeof old === 'number' ? old * n + c.pick([1, -1, 0.5]) : old;
      return { body: setAt(body, path, v), label: `${pathLabel(path)} ×${n}` };
    }
    default: {
      const v = c.pick([2 ** 31, 2 ** 32 + 1, -(2 ** 31) - 1, 2 ** 53, Number.MIN_VALUE, 0.1 + 0.2, 255, 256, 65536, 128, 129]);
      return { body: setAt(body, path, v), label: `${pathLabel(path)} = ${v}` };
    }
  }
}

const EXTRA_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', '', '\u0000', 'model', 'stream'];

function randomMutations(posts: readonly Route[], c: Chooser, count: number): FuzzCase[] {
  const out: FuzzCase[] = [];
  for (let i = 0; i < count; i++) {
    const r = c.pick(posts);
    let body: unknown = baseBody(r.path);
    const labels: string[] = [];
    for (let k = 1 + c.int(4); k > 0; k--) {
      const m = mutateOnce(c, body);
      body = m.body;
      labels.push(m.label);
    }
    let text = toJson(body);
    if (c.chance(0.3)) {
      // A duplicated or prototype-polluting key: only JSON text can say it.
      const key = c.pick(EXTRA_KEYS);
      const value = toJson(c.chance(0.5) ? { polluted: true, stream: true } : c.pick(RETYPES));
      text = withExtraMember(text, key, value);
      labels.push(`extra member ${JSON.stringify(key)}: ${value.slice(0, 30)}`);
    }
    out.push(post('random-mutations', r.path, labels.join('; '), () => text));
  }
  return out;
}

function jsonSyntax(posts: readonly Route[]): FuzzCase[] {
  const out: FuzzCase[] = [];
  for (const r of posts) {
    const valid = toJson(baseBody(r.path));
    for (const text of malformedJsonTexts(valid)) out.push(post('json-syntax', r.path, `body ${valueLabel(text)}`, () => text));
    out.push(post('json-syntax', r.path, 'a "__proto__" member', () => withExtraMember(valid, '__proto__', '{"stream":true,"max_tokens":1e9}')));
    out.push(post('json-syntax', r.path, 'a "constructor.prototype" member', () => withExtraMember(valid, 'constructor', '{"prototype":{"stream":true}}')));
    for (const key of Object.keys(baseBody(r.path))) {
      out.push(post('json-syntax', r.path, `"${key}" twice, second one a list`, () => withExtraMember(valid, key, '[1,{"a":null}]')));
    }
    out.push(post('json-syntax', r.path, 'raw NUL byte inside the JSON', () => Buffer.concat([Buffer.from(valid.slice(0, -1)), Buffer.from(',"x":"\0"}')])));
  }
  return out;
}

/** Content types that are not JSON: with a valid JSON body, the right answer is 415. */
const NOT_JSON = [
  'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'application/xml', 'application/octet-stream',
  'text/html', 'application/jsonl', 'json', 'text/json-ish', 'application/x-ndjson', 'image/png',
];
/** JSON spelled differently: a valid body must still be answered with 200. */
const JSON_SPELLINGS = ['APPLICATION/JSON', 'application/json;charset=UTF-8', 'application/json; charset="utf-8"', 'Application/Json ; charset=utf-8'];

function contentType(posts: readonly Route[]): FuzzCase[] {
  const out: FuzzCase[] = [];
  for (const r of posts) {
    const valid = toJson(baseBody(r.path));
    for (const ct of NOT_JSON) out.push(post('content-type', r.path, `Content-Type: ${ct}`, () => valid, { contentType: ct }, { statuses: [415] }));
    for (const ct of JSON_SPELLINGS) out.push(post('content-type', r.path, `Content-Type: ${ct}`, () => valid, { contentType: ct }, { statuses: [200] }));
    // No type at all, or an empty one: reading it as JSON and refusing are both defensible.
    out.push(post('content-type', r.path, 'no Content-Type', () => valid, { contentType: null }));
    out.push(post('content-type', r.path, 'empty Content-Type', () => valid, { contentType: '' }));
    out.push(post('content-type', r.path, 'two Content-Types (json, text)', () => valid, { headers: [['Content-Type', 'text/plain']] }, { statuses: [400, 415] }));
    out.push(post('content-type', r.path, 'Content-Encoding: gzip on a plain body', () => valid, { headers: [['Content-Encoding', 'gzip']] }, { statuses: [400, 415] }));
  }
  return out;
}

const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'TRACE'];

function methods(routes: readonly Route[]): FuzzCase[] {
  const out: FuzzCase[] = [];
  for (const r of routes) {
    const body = toJson(baseBody(r.path));
    for (const m of METHODS.filter((m) => !r.methods.includes(m))) {
      const withBody = m === 'PUT' || m === 'PATCH' || m === 'DELETE';
      out.push({
        category: 'method', label: `${m} ${r.path} (serves ${r.methods.join(', ')})`, method: m, shape: shapeFor(r.path),
        bytes: () => requestBytes({ method: m, path: r.path, ...(withBody ? { body } : {}) }), statuses: [405], allow: r.methods,
      });
    }
    // The CORS preflight route answers OPTIONS on every path: for a localhost page, and with a 403 for others.
    out.push({
      category: 'method', label: `OPTIONS ${r.path} (CORS preflight)`, method: 'OPTIONS', shape: shapeFor(r.path), statuses: [200, 204],
      bytes: () => requestBytes({ method: 'OPTIONS', path: r.path, headers: [['Origin', 'http://localhost:3000'], ['Access-Control-Request-Method', 'POST']] }),
    });
    out.push({
      category: 'method', label: `OPTIONS ${r.path} (preflight of a foreign page)`, method: 'OPTIONS', shape: shapeFor(r.path), statuses: [403],
      bytes: () => requestBytes({ method: 'OPTIONS', path: r.path, headers: [['Origin', 'http://x'], ['Access-Control-Request-Method', 'POST']] }),
    });
  }
  return out;
}

function get(category: Category, path: string, label: string, statuses?: readonly number[], extra: Partial<RequestSpec> = {}): FuzzCase {
  return {
    category, label: `GET ${label}`, method: 'GET', shape: shapeFor(path), bytes: () => requestBytes({ method: 'GET', path, ...extra }),
    ...(statuses ? { statuses } : {}),
  };
}

function paths(routes: readonly Route[]): FuzzCase[] {
  const out: FuzzCase[] = [];
  // `/` is the web UI's page (a route, fuzzed with the others); the files beside it are a fixed list.
  for (const p of ['/index.html', '/web', '/web/', '/web/nope.js', '/web/..%2Fpackage.json', '/v1', '/v1/', '/v2/models', '/api', '/api/', '/api/nope', '/v1/nope', '/V1/MODELS', '/health/x', '/favicon.ico', '/.env', '/v1/models/nope']) {
    out.push(get('paths', p, p, [404]));
  }
  for (const id of ['%00', '..%2F..%2Fetc%2Fpasswd', '%E2%80%AE', 'a'.repeat(4000), '%C0%AF', '😀', '%25', '%2e%2e', ' ']) {
    const path = `/v1/models/${id}`;
    out.push(get('paths', path, path, [400, 404, 414]));
  }
  for (const r of routes) {
    const m = r.methods.includes('GET') ? 'GET' : 'POST';
    const body = m === 'POST' ? toJson(baseBody(r.path)) : undefined;
    const variants: [string, string, (readonly number[])?][] = [
      [`${r.path}/`, 'trailing slash'],
      [`${r.path}//`, 'double trailing slash'],
      [r.path.replace(/\//g, '//'), 'doubled slashes'],
      [r.path.replace(/[a-z]/, (ch) => `%${ch.charCodeAt(0).toString(16)}`), 'a letter percent-encoded'],
      [r.path.replace(/\/([^/]*)$/, '%2F$1'), 'last slash as %2F'],
      [`${r.path}?${'a=1&'.repeat(2000)}`, '2000 query parameters'],
      [`${r.path}?a=%ZZ&b=%&c=%E0%A4%A`, 'broken percent-encoding in the query'],
      [`${r.path}?__proto__[x]=1&constructor[prototype][y]=2`, 'prototype keys in the query'],
      [`${r.path}#frag`, 'a fragment'],
      [`/x/..${r.path}`, 'dot segments'],
      [`${r.path}%ZZ`, 'broken percent-encoding in the path', [400, 404]],
      [`${r.path}%`, 'a lone % in the path', [400, 404]],
      [`${r.path}%00`, 'an encoded NUL', [400, 404]],
      [`${r.path}/${'x'.repeat(8000)}`, 'an 8000-char path', [404, 414]],
    ];
    for (const [path, what, statuses] of variants) {
      out.push({
        category: 'paths', label: `${m} ${r.path}: ${what}`, method: m, shape: shapeFor(path),
        bytes: () => requestBytes({ method: m, path, ...(body !== undefined ? { body } : {}) }), ...(statuses ? { statuses } : {}),
      });
    }
  }
  return out;
}

function raw(label: string, text: string | Buffer, statuses: readonly number[], extra: Partial<FuzzCase> = {}): FuzzCase {
  return {
    category: 'http-parser', label, method: 'GET', shape: 'openai', statuses,
    bytes: () => (Buffer.isBuffer(text) ? text : Buffer.from(text, 'latin1')), ...extra,
  };
}

/** Malformed HTTP: the parser's errors must still reach the client as a 4xx in OpenAI's shape. */
function httpParser(): FuzzCase[] {
  const H = 'Host: 127.0.0.1\r\nConnection: close\r\n';
  const chat = '/v1/chat/completions';
  const valid = toJson(baseBody(chat));
  const chunked = (chunks: string): string => `POST ${chat} HTTP/1.1\r\n${H}Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n${chunks}`;
  return [
    raw('garbage request line', 'GARBAGE\r\n\r\n', [400]),
    // Node's parser reads a versionless line as HTTP/0.9, and splits the request line on runs of spaces; RFC 9112
    // allows both leniencies, so 200 is as right as 400 there.
    raw('request line without a version', 'GET /health\r\n\r\n', [200, 400]),
    raw('lower-case method', `get /health HTTP/1.1\r\n${H}\r\n`, [400, 405]),
    raw('unknown method', `FOO /health HTTP/1.1\r\n${H}\r\n`, [400, 405]),
    raw('HTTP/9.9', `GET /health HTTP/9.9\r\n${H}\r\n`, [400, 505]),
    raw('space in the path', `GET /he alth HTTP/1.1\r\n${H}\r\n`, [400]),
    raw('raw NUL in the path', `GET /health\0 HTTP/1.1\r\n${H}\r\n`, [400]),
    raw('raw bytes ≥ 0x80 in the path', Buffer.concat([Buffer.from('GET /h'), Buffer.from([0xff, 0xc3]), Buffer.from(` HTTP/1.1\r\n${H}\r\n`)]), [400, 404]),
    raw('HTTP/1.1 without Host', 'GET /health HTTP/1.1\r\nConnection: close\r\n\r\n', [400]),
    raw('two Host headers', `GET /v1/models HTTP/1.1\r\n${H}Host: evil.example\r\n\r\n`, [400]),
    raw('two Host headers (Ollama route)', `GET /api/tags HTTP/1.1\r\n${H}Host: evil.example\r\n\r\n`, [400], { shape: 'ollama' }),
    raw('space before the colon', `GET /health HTTP/1.1\r\n${H}Bad Header: x\r\n\r\n`, [400]),
    raw('header line without a colon', `GET /health HTTP/1.1\r\n${H}NoColonHere\r\n\r\n`, [400]),
    raw('NUL in a header value', `GET /health HTTP/1.1\r\n${H}X-A: a\0b\r\n\r\n`, [400]),
    raw('bare CR in a header value', `GET /health HTTP/1.1\r\n${H}X-A: a\rb\r\n\r\n`, [400]),
    raw('obsolete line folding', `GET /health HTTP/1.1\r\n${H}X-A: a\r\n b\r\n\r\n`, [200, 400]),
    raw('one 20 KiB header', `GET /health HTTP/1.1\r\n${H}X-Big: ${'a'.repeat(20 * 1024)}\r\n\r\n`, [431]),
    raw('forty 1 KiB headers', `GET /health HTTP/1.1\r\n${H}${Array.from({ length: 40 }, (_, i) => `X-H${i}: ${'b'.repeat(1024)}\r\n`).join('')}\r\n`, [431]),
    raw('a 20 KiB request line', `GET /health?${'q'.repeat(20 * 1024)} HTTP/1.1\r\n${H}\r\n`, [414, 431]),
    raw('Expect: 100-continue', `POST ${chat} HTTP/1.1\r\n${H}Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(valid)}\r\nExpect: 100-continue\r\n\r\n${valid}`, [200]),
    raw('Expect: something-else', `GET /health HTTP/1.1\r\n${H}Expect: something-else\r\n\r\n`, [417]),
    raw('Content-Length: abc', `POST ${chat} HTTP/1.1\r\n${H}Content-Length: abc\r\n\r\n{}`, [400]),
    raw('Content-Length: -1', `POST ${chat} HTTP/1.1\r\n${H}Content-Length: -1\r\n\r\n{}`, [400]),
    raw('two different Content-Lengths', `POST ${chat} HTTP/1.1\r\n${H}Content-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}`, [400]),
    raw('Content-Length: 2, 3', `POST ${chat} HTTP/1.1\r\n${H}Content-Type: application/json\r\nContent-Length: 2, 3\r\n\r\n{}`, [400]),
    raw('Content-Length and chunked together', `POST ${chat} HTTP/1.1\r\n${H}Content-Type: application/json\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n`, [400]),
    raw('Transfer-Encoding: gzip, chunked', `POST ${chat} HTTP/1.1\r\n${H}Content-Type: application/json\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n`, [400, 415]),
    raw('Transfer-Encoding: identity', `POST ${chat} HTTP/1.1\r\n${H}Content-Type: application/json\r\nTransfer-Encoding: identity\r\n\r\n{}`, [400]),
    raw('chunk size not hex', chunked('zz\r\n{}\r\n0\r\n\r\n'), [400]),
    raw('chunk size overflowing 64 bits', chunked('fffffffffffffffffffff\r\n{}\r\n0\r\n\r\n'), [400, 413]),
    raw('chunk data longer than its size', chunked('1\r\n{}\r\n0\r\n\r\n'), [400]),
    raw('chunk without CRLF after its data', chunked('2\r\n{}0\r\n\r\n'), [400]),
    raw('chunk extension with a NUL', chunked('2;a=\0\r\n{}\r\n0\r\n\r\n'), [400]),
    raw('chunked, valid body', chunked(`${Buffer.byteLength(valid).toString(16)}\r\n${valid}\r\n0\r\n\r\n`), [200]),
    raw('HTTP/1.0, no Host', 'GET /health HTTP/1.0\r\n\r\n', [200]),
    raw('absolute-form target', `GET http://127.0.0.1/health HTTP/1.1\r\n${H}\r\n`, [200, 400, 404]),
    raw('asterisk target on GET', `GET * HTTP/1.1\r\n${H}\r\n`, [400, 404]),
    raw('leading empty lines', `\r\n\r\nGET /health HTTP/1.1\r\n${H}\r\n`, [200, 400]),
    raw('LF-only line ends', `GET /health HTTP/1.1\nHost: 127.0.0.1\nConnection: close\n\n`, [200, 400]),
    raw('only CRLFs, then the connection half-closes', '\r\n\r\n\r\n', [400], { mayClose: true, halfClose: true }),
    raw('request line of 2000 spaces', `GET${' '.repeat(2000)}/health HTTP/1.1\r\n${H}\r\n`, [200, 400]),
    raw('Upgrade: h2c', `GET /health HTTP/1.1\r\n${H}Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n`, [200, 400]),
    raw('HTTP/2 connection preface', 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', [400, 505]),
  ];
}

function truncatedBody(posts: readonly Route[]): FuzzCase[] {
  const out: FuzzCase[] = [];
  for (const r of posts) {
    const valid = toJson(baseBody(r.path));
    const half = valid.slice(0, Math.floor(valid.length / 2));
    out.push(post('truncated-body', r.path, `Content-Length ${Buffer.byteLength(valid)}, half the body sent`, () => half, {
      noLength: true, headers: [['Content-Length', String(Buffer.byteLength(valid))]],
    }, { statuses: [400], mayClose: true, halfClose: true }));
    out.push(post('truncated-body', r.path, 'chunked, no last chunk', () => `${Buffer.byteLength(half).toString(16)}\r\n${half}\r\n`, {
      noLength: true, headers: [['Transfer-Encoding', 'chunked']],
    }, { statuses: [400], mayClose: true, halfClose: true }));
    out.push(post('truncated-body', r.path, 'Content-Length 0', () => '', {}, { statuses: [400] }));
  }
  return out;
}

export interface CaseOptions {
  seed: number;
  /** The server's body limit (bytes), for the cases just over it. */
  bodyLimit: number;
  randomCount: number;
}

/** Every case, deterministic for a seed and a route table. */
export function fuzzCases(routes: readonly RouteEntry[], o: CaseOptions): FuzzCase[] {
  const all = concrete(routes);
  const posts = all.filter((r) => r.methods.includes('POST'));
  const c = new Chooser(o.seed);
  return [
    ...fieldTypes(posts), ...fieldDrops(posts), ...unicode(posts), ...oversize(posts, o.bodyLimit), ...deepNesting(posts),
    ...randomMutations(posts, c, o.randomCount), ...jsonSyntax(posts), ...contentType(posts), ...methods(all), ...paths(all),
    ...httpParser(), ...truncatedBody(posts),
  ];
}

/** The concrete path of every route the cases are made for (`:id` filled in). */
export function fuzzedPaths(routes: readonly RouteEntry[]): string[] {
  return concrete(routes).map((r) => r.path);
}

/** POST routes with no valid body in BASE_BODIES: fuzzed from `{}` only, worth a base body of their own. */
export function routesWithoutBase(routes: readonly RouteEntry[]): string[] {
  return concrete(routes).filter((r) => r.methods.includes('POST') && BASE_BODIES[r.path] === undefined).map((r) => r.path);
}
