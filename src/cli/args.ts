// Declarative flag parsing for ktserve's subcommands. Flags keep KTransformers' underscore names and accept
// dashes too (--max_new_tokens 8 ≡ --max-new-tokens=8); values are typed, checked, and --help is generated.
// `--config file.yaml` reads more flags from a file (vLLM's and SGLang's convention); the command line wins.
import { ConfigFileError, configFileArgs } from './config-file.js';

export type FlagType = 'string' | 'int' | 'float' | 'bool' | 'int-list';

export type FlagValue<T extends FlagType> = T extends 'string'
  ? string
  : T extends 'int' | 'float'
    ? number
    : T extends 'bool'
      ? boolean
      : number[];

export interface FlagSpec<T extends FlagType = FlagType> {
  /** KTransformers' spelling, with underscores (e.g. 'max_new_tokens'); also the key in the result. */
  name: string;
  type: T;
  help: string;
  default?: FlagValue<T>;
  required?: boolean;
  /** Allowed values (string and int flags). */
  choices?: readonly (string | number)[];
  /** Inclusive bounds for numbers, and for each element of a list. */
  min?: number;
  max?: number;
  /** Other long names, e.g. a KTransformers synonym. */
  aliases?: readonly string[];
  /** One-letter short form: 'm' for -m. */
  short?: string;
  /**
   * A flag known by name (KTransformers') that this build cannot honour yet: giving it (a bool flag: giving it
   * true) is a UsageError with this reason, instead of being taken silently or called unknown.
   */
  unsupported?: string;
}

/** A command line that cannot be obeyed; the CLI prints the message and exits with status 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** --help or -h was given; `text` is the generated help. The CLI prints it and exits with status 0. */
export class HelpRequested extends Error {
  override readonly name = 'HelpRequested';
  constructor(readonly text: string) {
    super('help requested');
  }
}

type HasValue<F> = F extends { required: true }
  ? true
  : F extends { default: unknown }
    ? true
    : F extends { type: 'bool' }
      ? true
      : false;

/** The parse result: one key per flag (typed by its spec), plus positionals in `_`. */
export type ParsedFlags<S extends readonly FlagSpec[]> = {
  [F in S[number] as F['name']]: HasValue<F> extends true ? FlagValue<F['type']> : FlagValue<F['type']> | undefined;
} & { _: string[] };

export interface ParseOptions {
  /** For usage lines, e.g. 'ktserve generate'. */
  command?: string;
  description?: string;
  /** Names positional arguments in the usage line (e.g. '<prompt>'); without it positionals are an error. */
  positionals?: string;
}

const normalize = (name: string) => name.replace(/-/g, '_');

const TRUE_WORDS = new Set(['true', '1', 'yes', 'on']);
const FALSE_WORDS = new Set(['false', '0', 'no', 'off']);

function typeLabel(s: FlagSpec): string {
  if (s.choices) return s.choices.join('|');
  return s.type === 'int-list' ? 'int,…' : s.type;
}

function rangeText(s: FlagSpec): string | undefined {
  if (s.min !== undefined && s.max !== undefined) return `between ${s.min} and ${s.max}`;
  if (s.min !== undefined) return `≥ ${s.min}`;
  if (s.max !== undefined) return `≤ ${s.max}`;
  return undefined;
}

function checkNumber(flag: string, s: FlagSpec, v: number): void {
  if ((s.min !== undefined && v < s.min) || (s.max !== undefined && v > s.max)) {
    throw new UsageError(`${flag} must be ${rangeText(s)}, got ${v}`);
  }
}

function parseInt10(flag: string, raw: string, what: string): number {
  const t = raw.trim();
  const v = Number(t);
  if (!/^[+-]?\d+$/.test(t) || !Number.isSafeInteger(v)) throw new UsageError(`${flag} expects ${what}, got '${raw}'`);
  return v;
}

/** Converts one raw value by the flag's type and checks choices and bounds. */
function convert(flag: string, s: FlagSpec, raw: string): FlagValue<FlagType> {
  switch (s.type) {
    case 'string':
      if (s.choices && !s.choices.includes(raw)) {
        const hint = suggest(raw, s.choices.map(String));
        throw new UsageError(`${flag} must be one of ${s.choices.join(', ')}; got '${raw}'${hint ? ` (did you mean '${hint}'?)` : ''}`);
      }
      return raw;
    case 'int': {
      const v = parseInt10(flag, raw, `an integer${rangeText(s) ? ` ${rangeText(s)}` : ''}`);
      if (s.choices && !s.choices.includes(v)) throw new UsageError(`${flag} must be one of ${s.choices.join(', ')}; got ${v}`);
      checkNumber(flag, s, v);
      return v;
    }
    case 'float': {
      const t = raw.trim();
      const v = Number(t);
      if (!/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(t) || !Number.isFinite(v)) {
        throw new UsageError(`${flag} expects a number${rangeText(s) ? ` ${rangeText(s)}` : ''}, got '${raw}'`);
      }
      checkNumber(flag, s, v);
      return v;
    }
    case 'bool': {
      const w = raw.toLowerCase();
      if (TRUE_WORDS.has(w)) return true;
      if (FALSE_WORDS.has(w)) return false;
      throw new UsageError(`${flag} expects true or false, got '${raw}'`);
    }
    case 'int-list': {
      const what = 'a comma-separated list of integers (e.g. 1,4,16)';
      if (raw.trim() === '') throw new UsageError(`${flag} expects ${what}, got ''`);
      return raw.split(',').map((part) => {
        const v = parseInt10(flag, part, what);
        checkNumber(flag, s, v);
        return v;
      });
    }
  }
}

/** Edit distance counting a swap of neighbours as one edit (typos like 'cdua' for 'cuda'). */
function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

/** The closest candidate: a small edit distance, or one whose words include all of the input's words. */
export function suggest(input: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestScore = Infinity;
  const words = input.toLowerCase().split('_').filter(Boolean);
  for (const c of candidates) {
    const d = editDistance(input.toLowerCase(), c.toLowerCase());
    const cw = new Set(c.toLowerCase().split('_'));
    const close = d <= Math.max(2, Math.floor(input.length / 3)) || (words.length > 1 && words.every((w) => cw.has(w)));
    if (close && d < bestScore) {
      best = c;
      bestScore = d;
    }
  }
  return best;
}

interface Scan {
  values: Map<FlagSpec, unknown>;
  positionals: string[];
  configPath: string | undefined;
}

/** Reads one list of tokens (the command line, or a config file's) into typed values, later ones winning. */
function scanTokens(argv: readonly string[], spec: readonly FlagSpec[], opts: ParseOptions): Scan {
  const byName = new Map<string, FlagSpec>();
  const byShort = new Map<string, FlagSpec>();
  for (const s of spec) {
    for (const n of [s.name, ...(s.aliases ?? [])]) byName.set(normalize(n), s);
    if (s.short) byShort.set(s.short, s);
  }
  const values = new Map<FlagSpec, unknown>();
  const positionals: string[] = [];
  let configPath: string | undefined;

  for (let i = 0; i < argv.length; i++) {
    const tok = argv[i]!;
    if (tok === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    let s: FlagSpec | undefined;
    let flag: string;
    let inline: string | undefined;
    let negated = false;
    if (tok.startsWith('--')) {
      const eq = tok.indexOf('=');
      flag = eq < 0 ? tok : tok.slice(0, eq);
      inline = eq < 0 ? undefined : tok.slice(eq + 1);
      const key = normalize(flag.slice(2));
      s = byName.get(key);
      if (!s && key === 'help') throw new HelpRequested(formatHelp(spec, opts));
      if (!s && key === 'config') {
        const path = inline ?? argv[++i];
        if (path === undefined || path === '') throw new UsageError('--config needs a value (a YAML file)');
        if (configPath !== undefined) throw new UsageError(`--config given twice (${configPath}, ${path}); put the flags in one file`);
        configPath = path;
        continue;
      }
      // --no-x is --x=false for a bool flag (argparse's BooleanOptionalAction, as KTransformers' --no-force_think).
      const positive = !s && key.startsWith('no_') ? byName.get(key.slice(3)) : undefined;
      if (positive?.type === 'bool') {
        s = positive;
        negated = true;
      }
      if (!s) {
        const hint = suggest(key, [...byName.keys()]);
        throw new UsageError(`unknown flag ${flag}${hint ? ` (did you mean --${hint}?)` : ''}; see --help`);
      }
    } else if (/^-[A-Za-z]/.test(tok)) {
      flag = tok.slice(0, 2);
      inline = tok.length > 2 ? tok.slice(tok[2] === '=' ? 3 : 2) : undefined;
      s = byShort.get(tok[1]!);
      if (!s && tok === '-h') throw new HelpRequested(formatHelp(spec, opts));
      if (!s) throw new UsageError(`unknown flag ${flag}; see --help`);
    } else {
      positionals.push(tok);
      continue;
    }

    // Refused whatever its value: the reason helps more than a complaint about a missing or odd value.
    if (s.unsupported !== undefined && s.type !== 'bool') throw new UsageError(`${flag}: ${s.unsupported}`);
    let raw = inline;
    if (s.type === 'bool' && raw === undefined) {
      // `--flag` alone means true; `--flag true|false` consumes the word (not after --no-flag: that is the value).
      const next = argv[i + 1]?.toLowerCase();
      raw = !negated && next !== undefined && (TRUE_WORDS.has(next) || FALSE_WORDS.has(next)) ? argv[++i]! : 'true';
    } else if (raw === undefined) {
      const next = argv[i + 1];
      // A following flag means the value is missing; a negative number is still a value.
      if (next === undefined || (next.startsWith('-') && !/^-\.?\d/.test(next))) {
        throw new UsageError(`${flag} needs a value (${typeLabel(s)})`);
      }
      raw = next;
      i++;
    }
    let v = convert(flag, s, raw);
    if (negated) v = !v;
    if (s.unsupported !== undefined && v === true) throw new UsageError(`${flag}: ${s.unsupported}`);
    values.set(s, v);
  }
  return { values, positionals, configPath };
}

/** A config file's flags, checked as the command line's are; its errors name the file. */
function scanConfig(path: string, spec: readonly FlagSpec[], opts: ParseOptions): Map<FlagSpec, unknown> {
  try {
    // configFileArgs refuses a `config` key, so the file's tokens name no other file.
    return scanTokens(configFileArgs(path), spec, opts).values;
  } catch (e) {
    if (e instanceof ConfigFileError) throw new UsageError(e.message);
    if (e instanceof UsageError) throw new UsageError(`--config ${path}: ${e.message}`);
    throw e;
  }
}

/** Parses `argv` (the arguments after the subcommand) against `spec`. Throws UsageError or HelpRequested. */
export function parseFlags<const S extends readonly FlagSpec[]>(
  argv: readonly string[],
  spec: S,
  opts: ParseOptions = {},
): ParsedFlags<S> {
  const { values, positionals, configPath } = scanTokens(argv, spec, opts);
  if (configPath !== undefined) {
    for (const [s, v] of scanConfig(configPath, spec, opts)) if (!values.has(s)) values.set(s, v);
  }
  if (positionals.length > 0 && opts.positionals === undefined) {
    throw new UsageError(`unexpected argument '${positionals[0]}'; flags start with --`);
  }
  const out: Record<string, unknown> = { _: positionals };
  for (const s of spec) {
    let v = values.get(s);
    if (v === undefined) {
      if (s.required) throw new UsageError(`missing required flag --${s.name} (${typeLabel(s)})`);
      v = Array.isArray(s.default) ? [...s.default] : (s.default ?? (s.type === 'bool' ? false : undefined));
    }
    out[s.name] = v;
  }
  return out as ParsedFlags<S>;
}

function wrap(text: string, width: number, indent: number): string {
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(/\s+/).filter(Boolean)) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  if (line) lines.push(line);
  return lines.join(`\n${' '.repeat(indent)}`);
}

/** Help text from the spec: usage, description, one entry per flag with type, default and bounds. */
export function formatHelp(spec: readonly FlagSpec[], opts: ParseOptions = {}): string {
  const usage = `Usage: ${opts.command ?? 'ktserve'} [options]${opts.positionals ? ` ${opts.positionals}` : ''}`;
  const rows = spec.filter((s) => s.unsupported === undefined).map((s) => {
    const names = [s.short ? `-${s.short}, ` : '', `--${s.name}`, ...(s.aliases ?? []).map((a) => `, --${a}`)].join('');
    const left = `${names} ${s.type === 'bool' ? '[true|false]' : `<${typeLabel(s)}>`}`;
    const notes: string[] = [];
    if (s.required) notes.push('required');
    if (s.default !== undefined) notes.push(`default: ${Array.isArray(s.default) ? s.default.join(',') : s.default}`);
    const range = rangeText(s);
    if (range) notes.push(range);
    return [left, notes.length ? `${s.help} (${notes.join('; ')})` : s.help] as const;
  });
  rows.push(['--config <file.yaml>', 'Read flags from a YAML mapping (port: 10002, max_batch_size: 8); the command line overrides it']);
  rows.push(['-h, --help', 'Show this help and exit']);
  const refused = spec.filter((s) => s.unsupported !== undefined).map((s) => `--${s.name}`);
  const col = Math.min(34, Math.max(...rows.map(([l]) => l.length)) + 2);
  const body = rows.map(([l, r]) => {
    const pad = l.length + 2 <= col ? l.padEnd(col) : `${l}\n${' '.repeat(col + 2)}`;
    return `  ${pad}${wrap(r, 100 - col - 2, col + 2)}`;
  });
  return [
    usage,
    ...(opts.description ? ['', wrap(opts.description, 100, 0)] : []),
    '',
    'Options:',
    ...body,
    '',
    'Underscores and dashes are interchangeable in flag names (--max_new_tokens ≡ --max-new-tokens),',
    'and a value may follow the flag or an = sign (--max_new_tokens=8).',
    ...(refused.length > 0 ? ['', wrap(`Known but not supported yet (refused with the reason): ${refused.join(' ')}`, 100, 0)] : []),
    '',
  ].join('\n');
}

/** --kv_cache_dtype: `auto` is bf16 on CUDA (half the KV memory and attention reads), f32 on the CPU. */
export function kvDtypeFor(flag: string, backend: 'cpu' | 'cuda'): 'f32' | 'bf16' {
  if (flag === 'auto') return backend === 'cuda' ? 'bf16' : 'f32';
  return flag === 'bf16' ? 'bf16' : 'f32';
}
