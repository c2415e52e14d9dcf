// `--config file.yaml`: flags from a YAML mapping, as vLLM's and SGLang's --config take them (`port: 10002`,
// `max-batch-size: 8`, lists for list flags). Each entry becomes the `--key=value` the command line would hold,
// so the file gets the same names, checks and messages; flags on the command line override it.
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';

/** The file cannot be read as flags; the parser reports it as a usage error (exit 2). */
export class ConfigFileError extends Error {
  override readonly name = 'ConfigFileError';
}

function tokenValue(path: string, key: string, v: unknown): string {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  // A list flag (--concurrency 1,4,16; --allowed_origins a,b) takes the command line's comma-separated form.
  if (Array.isArray(v) && v.every((x) => typeof x === 'string' || typeof x === 'number')) return v.join(',');
  const what = v === null ? 'no value' : Array.isArray(v) ? 'a list of non-scalars' : 'a nested mapping';
  throw new ConfigFileError(`--config ${path}: ${key} has ${what}; give a string, number, boolean or list`);
}

/** The file's flags as command-line tokens (`--max_batch_size=8`), in the file's order. */
export function configFileArgs(path: string): string[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new ConfigFileError(`--config ${path}: ${(e as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (e) {
    throw new ConfigFileError(`--config ${path}: not valid YAML: ${(e as Error).message}`);
  }
  if (doc === null || doc === undefined) return []; // an empty file sets nothing
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw new ConfigFileError(`--config ${path}: expected a mapping of flag names to values (e.g. "port: 10002")`);
  }
  return Object.entries(doc as Record<string, unknown>).map(([key, v]) => {
    if (key === 'config') throw new ConfigFileError(`--config ${path}: a config file cannot name another (config: ${String(v)})`);
    return `--${key}=${tokenValue(path, key, v)}`;
  });
}
