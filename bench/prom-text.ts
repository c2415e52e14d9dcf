// A strict reader of the Prometheus text exposition format (0.0.4), for the tests and benches that read /metrics:
// it throws on what a Prometheus server would refuse or misread (a sample before its # TYPE, a name outside its family, a repeated
// series, bad label syntax, a histogram whose buckets are not cumulative or whose +Inf bucket is not its count).
import assert from 'node:assert/strict';

export type MetricType = 'counter' | 'gauge' | 'histogram' | 'summary' | 'untyped';

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

export interface MetricFamily {
  name: string;
  type: MetricType;
  help: string;
  samples: Sample[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const TYPES = new Set<MetricType>(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

/** As Prometheus reads values (Go's ParseFloat: NaN and Inf in any case; prom-client writes "Nan"). */
function parseValue(text: string, line: string): number {
  const special = text.toLowerCase();
  if (special === '+inf' || special === 'inf') return Infinity;
  if (special === '-inf') return -Infinity;
  if (special === 'nan') return NaN;
  const v = Number(text);
  if (text === '' || Number.isNaN(v)) throw new Error(`bad sample value in: ${line}`);
  return v;
}

/** `{a="x",b="y\"z"}` → labels, and where the text after it starts. */
function parseLabels(text: string, start: number, line: string): { labels: Record<string, string>; end: number } {
  const labels: Record<string, string> = {};
  let i = start + 1;
  while (text[i] !== '}') {
    const eq = text.indexOf('=', i);
    if (eq < 0) throw new Error(`bad labels in: ${line}`);
    const name = text.slice(i, eq).trim();
    if (!LABEL_NAME.test(name)) throw new Error(`bad label name ${JSON.stringify(name)} in: ${line}`);
    if (Object.hasOwn(labels, name)) throw new Error(`label ${name} twice in: ${line}`);
    if (text[eq + 1] !== '"') throw new Error(`unquoted label value in: ${line}`);
    let value = '';
    let j = eq + 2;
    for (; j < text.length && text[j] !== '"'; j++) {
      if (text[j] === '\\') {
        const c = text[++j];
        value += c === 'n' ? '\n' : c;
      } else value += text[j];
    }
    if (j >= text.length) throw new Error(`unterminated label value in: ${line}`);
    labels[name] = value;
    i = j + 1;
    if (text[i] === ',') i++;
    else if (text[i] !== '}') throw new Error(`bad labels in: ${line}`);
  }
  return { labels, end: i + 1 };
}

function parseSample(line: string): Sample {
  const brace = line.indexOf('{');
  const space = line.indexOf(' ');
  let name: string;
  let labels: Record<string, string> = {};
  let rest: string;
  if (brace >= 0 && (space < 0 || brace < space)) {
    name = line.slice(0, brace);
    const parsed = parseLabels(line, brace, line);
    labels = parsed.labels;
    rest = line.slice(parsed.end);
  } else {
    name = line.slice(0, space);
    rest = line.slice(space);
  }
  if (!NAME.test(name)) throw new Error(`bad metric name in: ${line}`);
  const parts = rest.trim().split(/\s+/);
  if (parts.length < 1 || parts.length > 2) throw new Error(`bad sample in: ${line}`);
  return { name, labels, value: parseValue(parts[0]!, line) };
}

/** The sample names a family of this type may hold. */
function allowedNames(f: MetricFamily): string[] {
  if (f.type === 'histogram') return [`${f.name}_bucket`, `${f.name}_sum`, `${f.name}_count`];
  if (f.type === 'summary') return [f.name, `${f.name}_sum`, `${f.name}_count`];
  return [f.name];
}

function seriesKey(s: Sample): string {
  return `${s.name}{${Object.entries(s.labels).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(',')}}`;
}

/** Buckets cumulative, `le` ascending to +Inf, and the +Inf bucket equal to `_count`, for each label set. */
function checkHistogram(f: MetricFamily): void {
  const groups = new Map<string, { buckets: [number, number][]; count?: number; sum?: number }>();
  for (const s of f.samples) {
    const { le, ...rest } = s.labels;
    const key = seriesKey({ name: '', labels: rest, value: 0 });
    const g = groups.get(key) ?? { buckets: [] };
    groups.set(key, g);
    if (s.name.endsWith('_bucket')) {
      if (le === undefined) throw new Error(`${f.name}: bucket without le`);
      g.buckets.push([parseValue(le, le), s.value]);
    } else if (s.name.endsWith('_count')) g.count = s.value;
    else g.sum = s.value;
  }
  for (const [key, g] of groups) {
    const where = `${f.name}${key}`;
    assert.ok(g.buckets.length > 0 && g.count !== undefined && g.sum !== undefined, `${where}: buckets, _sum and _count`);
    for (let i = 1; i < g.buckets.length; i++) {
      assert.ok(g.buckets[i]![0] > g.buckets[i - 1]![0], `${where}: le ascending`);
      assert.ok(g.buckets[i]![1] >= g.buckets[i - 1]![1], `${where}: buckets cumulative`);
    }
    const last = g.buckets[g.buckets.length - 1]!;
    assert.equal(last[0], Infinity, `${where}: last bucket is +Inf`);
    assert.equal(last[1], g.count, `${where}: +Inf bucket equals _count`);
  }
}

/** Parses and checks a whole exposition; families by name. */
export function parsePrometheusText(text: string): Map<string, MetricFamily> {
  const families = new Map<string, MetricFamily>();
  const help = new Map<string, string>();
  const seen = new Set<string>();
  let current: MetricFamily | undefined;
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    if (line.startsWith('#')) {
      const m = /^# (HELP|TYPE) (\S+)(?: (.*))?$/.exec(line);
      if (!m) continue; // a plain comment
      const [, kind, name, arg = ''] = m;
      if (!NAME.test(name!)) throw new Error(`bad metric name in: ${line}`);
      if (kind === 'HELP') {
        help.set(name!, arg);
        continue;
      }
      if (families.has(name!)) throw new Error(`# TYPE ${name} twice`);
      if (!TYPES.has(arg as MetricType)) throw new Error(`bad type in: ${line}`);
      current = { name: name!, type: arg as MetricType, help: help.get(name!) ?? '', samples: [] };
      families.set(name!, current);
      continue;
    }
    const s = parseSample(line);
    if (!current || !allowedNames(current).includes(s.name)) throw new Error(`sample outside its family (no # TYPE before it): ${line}`);
    const key = seriesKey(s);
    if (seen.has(key)) throw new Error(`series twice: ${key}`);
    seen.add(key);
    current.samples.push(s);
  }
  for (const f of families.values()) if (f.type === 'histogram') checkHistogram(f);
  return families;
}

/** The one sample named `name` whose labels include `labels`; throws if none or several match. */
export function sample(families: Map<string, MetricFamily>, name: string, labels: Record<string, string> = {}): number {
  const matches: Sample[] = [];
  for (const f of families.values()) {
    for (const s of f.samples) {
      if (s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v)) matches.push(s);
    }
  }
  if (matches.length !== 1) throw new Error(`${matches.length} samples ${name}${JSON.stringify(labels)}`);
  return matches[0]!.value;
}

/** Fetches and parses a server's /metrics. */
export async function scrape(url: string): Promise<Map<string, MetricFamily>> {
  const res = await fetch(`${url}/metrics`);
  assert.equal(res.status, 200);
  return parsePrometheusText(await res.text());
}
