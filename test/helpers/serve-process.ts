// `ktserve serve` as a child process, for tests of the command as users start it: resolves once it says where it
// listens (or rejects with its stderr if it exits first).
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { join } from 'node:path';
import { repoRoot } from '../fixtures.js';

export interface ServeProcess {
  child: ChildProcessWithoutNullStreams;
  url: string;
  /** Everything it wrote to stderr so far. */
  stderr: () => string;
  /** Its exit code (null when ended by a signal). */
  exited: Promise<number | null>;
}

const main = join(repoRoot, 'dist', 'src', 'cli', 'main.js');

/** Starts `ktserve serve <args>` (pass --port 0 for a free port). */
export async function startServe(args: readonly string[]): Promise<ServeProcess> {
  const child = spawn(process.execPath, [main, 'serve', ...args]);
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const url = await new Promise<string>((resolve, reject) => {
    const onData = (): void => {
      const m = /listening on (http:\/\/[\d.:]+)/.exec(stderr);
      if (m) resolve(m[1]!);
    };
    child.stderr.on('data', onData);
    void exited.then(() => reject(new Error(`server exited before listening: ${stderr}`)));
  });
  return { child, url, stderr: () => stderr, exited };
}
