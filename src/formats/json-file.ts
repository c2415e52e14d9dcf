// Reads Hugging Face JSON files (config.json, generation_config.json, tokenizer_config.json, index files)
// with errors that name the file and say what is wrong: missing, unreadable, not JSON, not an object.
import { readFileSync } from 'node:fs';
import { ConfigFileError } from './errors.js';

/**
 * Parses a JSON file that must hold an object. `what` says what the file is for the message
 * ('model config', 'generation config'...). The result is not validated beyond being an object.
 */
export function readJsonFile<T = Record<string, unknown>>(path: string, what: string): T {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' ? 'not found' : code === 'EISDIR' ? 'is a directory' : `cannot be read (${code ?? String(err)})`;
    throw new ConfigFileError(path, `${what} ${why}`, { cause: err });
  }
  return parseJsonText<T>(path, what, text);
}

/** Like readJsonFile, but undefined when the file does not exist (optional files such as generation_config.json). */
export function readOptionalJsonFile<T = Record<string, unknown>>(path: string, what: string): T | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    return readJsonFile<T>(path, what); // rethrows with the same message as a required file
  }
  return parseJsonText<T>(path, what, text);
}

function parseJsonText<T>(path: string, what: string, text: string): T {
  // A UTF-8 byte order mark is legal in files written on Windows but not in JSON.parse input.
  const body = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch (err) {
    throw new ConfigFileError(path, `${what} is not valid JSON: ${(err as Error).message}${locate(body, err as Error)}`, { cause: err });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ConfigFileError(path, `${what} must be a JSON object, found ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}`);
  }
  return value as T;
}

/** " (line L, column C)" when V8's message gives a position, so the user can find the typo. */
function locate(text: string, err: Error): string {
  const m = /position (\d+)/.exec(err.message);
  if (!m || /line \d+/.test(err.message)) return '';
  const pos = Number(m[1]);
  const before = text.slice(0, pos);
  const line = before.split('\n').length;
  const column = pos - before.lastIndexOf('\n');
  return ` (line ${line}, column ${column})`;
}
