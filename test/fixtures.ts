// Where the shared oracle fixtures live (../shared/fixtures beside the checkout), and small readers for them.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('repository root not found');
    dir = up;
  }
  return dir;
}

export const repoRoot = findRoot();
export const fixturesDir = process.env.KT_FIXTURES ?? resolve(repoRoot, '..', 'shared', 'fixtures');
export const haveFixtures = existsSync(join(fixturesDir, 'README.md'));
/** Pass as a node:test option so tests skip, saying why, where the fixtures are absent. */
export const needFixtures = haveFixtures ? {} : { skip: `fixtures not found at ${fixturesDir}` };

export function fixturePath(...parts: string[]): string {
  return join(fixturesDir, ...parts);
}

export function readFixtureJson<T = unknown>(...parts: string[]): T {
  return JSON.parse(readFileSync(fixturePath(...parts), 'utf8')) as T;
}

/** Decodes a base64 little-endian float32 array. */
export function decodeF32(b64: string): Float32Array {
  const bytes = Buffer.from(b64, 'base64');
  const out = new Float32Array(bytes.length / 4);
  for (let i = 0; i < out.length; i++) out[i] = bytes.readFloatLE(i * 4);
  return out;
}
