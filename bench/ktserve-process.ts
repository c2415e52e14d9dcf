// `ktserve serve` as a child process, for suites that must watch the server from outside: whether the process
// survives, its exit status and last words on stderr, and its resident memory over time (/proc/<pid>/status).
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The built CLI: this file runs as dist/bench/ktserve-process.js, beside dist/src/ (npm run build puts both there). */
export const ktserveMain = fileURLToPath(new URL('../src/cli/main.js', import.meta.url));

export interface KtserveProcess {
  url: string;
  pid: number;
  /** Everything the server wrote to stderr so far (its start-up lines, logged errors, a crash's stack). */
  stderr(): string;
  /** null while it runs; how it ended otherwise. */
  exited(): { code: number | null; signal: NodeJS.Signals | null } | null;
  /** Resident set size in KiB (VmRSS), or undefined where /proc is not there or the process is gone. */
  rssKiB(): number | undefined;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with how it ended. */
  stop(graceMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Kept short: a crash's stack is at the end, and a long-running server's log must not grow without bound. */
const STDERR_KEEP = 64 * 1024;

export interface StartOptions {
  /** How long it may take to say it listens (default 60 s). */
  startMs?: number;
  /** Its environment (default this process's). */
  env?: NodeJS.ProcessEnv;
}

/**
 * Starts `ktserve serve <args> --port 0` and resolves once it says where it listens. Rejects, with its stderr,
 * if it exits first or takes longer than `startMs`.
 */
export async function startKtserve(args: readonly string[], opts: StartOptions = {}): Promise<KtserveProcess> {
  const startMs = opts.startMs ?? 60_000;
  const child: ChildProcess = spawn(process.execPath, [ktserveMain, 'serve', ...args, '--host', '127.0.0.1', '--port', '0'], {
    stdio: ['ignore', 'ignore', 'pipe'],
    ...(opts.env ? { env: opts.env } : {}),
  });
  let log = '';
  let ended: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  // If this process ends without stopping the server (an uncaught error, a closed stdout pipe), the server goes too.
  const orphanGuard = (): void => void child.kill('SIGKILL');
  process.once('exit', orphanGuard);
  const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      ended = { code, signal };
      process.off('exit', orphanGuard);
      resolve(ended);
    });
  });
  child.stderr!.on('data', (d: Buffer) => {
    log += d.toString();
    if (log.length > STDERR_KEEP * 2) log = log.slice(-STDERR_KEEP);
  });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`ktserve did not start in ${startMs} ms:\n${log}`));
    }, startMs);
    const onData = (): void => {
      const m = /listening on (http:\/\/[\d.:]+)/.exec(log);
      if (!m) return;
      clearTimeout(timer);
      child.stderr!.off('data', onData);
      resolve(m[1]!);
    };
    child.stderr!.on('data', onData);
    void exit.then((e) => {
      clearTimeout(timer);
      reject(new Error(`ktserve exited (code ${e.code}, signal ${e.signal}) before listening:\n${log}`));
    });
  });
  const pid = child.pid!;
  return {
    url,
    pid,
    stderr: () => log,
    exited: () => ended,
    rssKiB: () => (ended === null ? procRssKiB(pid) : undefined),
    stop: async (graceMs = 10_000) => {
      if (ended !== null) return ended;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const e = await exit;
      clearTimeout(timer);
      return e;
    },
  };
}

/** VmRSS of a process in KiB, from Linux's /proc; undefined elsewhere or once it is gone. */
export function procRssKiB(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** The server a benchmark drives: one it started (and stops), or one given by URL (and maybe its pid). */
export interface ServerTarget {
  url: string;
  /** Set when the benchmark started the server. */
  process?: KtserveProcess;
  /** The server's RSS in KiB, where its pid is known and /proc readable. */
  rssKiB(): number | undefined;
  /** Whether the server process is known to have exited. */
  dead(): boolean;
  close(): Promise<void>;
}

/** Targets `url` when given, else starts `ktserve serve <serveArgs>`; `pid` lets RSS be read for a given URL. */
export async function serverTarget(o: { url?: string | undefined; pid?: number | undefined; serveArgs: readonly string[] }): Promise<ServerTarget> {
  if (o.url !== undefined) {
    const pid = o.pid;
    return {
      url: o.url.replace(/\/+$/, '').replace(/\/v1$/, ''),
      rssKiB: () => (pid === undefined ? undefined : procRssKiB(pid)),
      dead: () => false,
      close: async () => undefined,
    };
  }
  const p = await startKtserve(o.serveArgs);
  return {
    url: p.url,
    process: p,
    rssKiB: () => p.rssKiB(),
    dead: () => p.exited() !== null,
    close: async () => {
      await p.stop();
    },
  };
}
