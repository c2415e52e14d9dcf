// The held-out questions (heldout.jsonl, written by data.py with the evaluation seed) and where they live.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface HeldoutItem {
  task: string;
  question: string;
  answer: string;
}

/** scripts/demo-model in the repository, whether this runs from the sources or from dist/. */
export function demoScriptsDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) dir = dirname(dir);
  return join(dir, 'scripts', 'demo-model');
}

export function readJsonl<T>(path: string): T[] {
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as T);
}

export function readHeldout(path = join(demoScriptsDir(), 'heldout.jsonl')): HeldoutItem[] {
  return readJsonl<HeldoutItem>(path);
}
