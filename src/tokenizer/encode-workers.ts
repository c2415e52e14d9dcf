// Tokenizes long texts on worker threads, so that a multi-megabyte prompt does not stall the event loop serving
// every other client (/health, streams). Each worker builds the same tokenizer from its source files; workers
// start on first use, up to the pool's size, and a job goes to the one with the least work queued.
import { Worker } from 'node:worker_threads';
import type { EncodeOptions, TokenizerSource } from './types.js';

export interface EncodeJob {
  id: number;
  text: string;
  opts: EncodeOptions;
}

export type EncodeReply = { id: number; ids: Int32Array } | { id: number; error: string };

/** A worker died or failed a job; the message says which, for the log. */
export class EncodeWorkerError extends Error {
  override readonly name = 'EncodeWorkerError';
}

interface Pending {
  resolve: (ids: number[]) => void;
  reject: (e: Error) => void;
}

class EncodeWorker {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();

  constructor(source: TokenizerSource, private readonly onGone: (w: EncodeWorker) => void) {
    this.worker = new Worker(new URL('./encode-worker-main.js', import.meta.url), { workerData: { source } });
    this.worker.unref(); // an idle worker must not keep the process alive
    this.worker.on('message', (reply: EncodeReply) => this.settle(reply));
    this.worker.on('error', (e) => this.fail(new EncodeWorkerError(`encode worker failed: ${e.message}`, { cause: e })));
    this.worker.on('exit', (code) => this.fail(new EncodeWorkerError(`encode worker exited (code ${code})`)));
  }

  get queued(): number {
    return this.pending.size;
  }

  encode(job: EncodeJob): Promise<number[]> {
    return new Promise((resolve, reject) => {
      if (this.pending.size === 0) this.worker.ref(); // a job in flight keeps the process alive until answered
      this.pending.set(job.id, { resolve, reject });
      this.worker.postMessage(job);
    });
  }

  private settle(reply: EncodeReply): void {
    const p = this.pending.get(reply.id);
    if (!p) return;
    this.pending.delete(reply.id);
    if (this.pending.size === 0) this.worker.unref();
    if ('ids' in reply) p.resolve(toArray(reply.ids));
    else p.reject(new EncodeWorkerError(`encode worker: ${reply.error}`));
  }

  private fail(e: Error): void {
    this.onGone(this);
    for (const p of this.pending.values()) p.reject(e);
    this.pending.clear();
  }

  terminate(): Promise<number> {
    return this.worker.terminate();
  }
}

/** Array.from(typed) goes through the iterator protocol: ~200 ns an element, which for millions of ids would be
 * the very stall the worker is there to avoid. An indexed copy is a few ns. */
function toArray(ids: Int32Array): number[] {
  const out = new Array<number>(ids.length);
  for (let i = 0; i < ids.length; i++) out[i] = ids[i]!;
  return out;
}

export class EncodeWorkerPool {
  private readonly workers: EncodeWorker[] = [];
  private nextId = 0;

  constructor(private readonly source: TokenizerSource, private readonly size: number) {
    if (!Number.isInteger(size) || size < 1) throw new RangeError(`an encode worker pool needs at least one worker, got ${size}`);
  }

  /** tokenizer.encode(text, opts), on a worker. A worker that dies fails its jobs; the next job starts another. */
  encode(text: string, opts: EncodeOptions = {}): Promise<number[]> {
    return this.pick().encode({ id: this.nextId++, text, opts });
  }

  private pick(): EncodeWorker {
    const idle = this.workers.find((w) => w.queued === 0);
    if (idle) return idle;
    if (this.workers.length < this.size) {
      const w = new EncodeWorker(this.source, (gone) => this.forget(gone));
      this.workers.push(w);
      return w;
    }
    return this.workers.reduce((a, b) => (b.queued < a.queued ? b : a));
  }

  private forget(gone: EncodeWorker): void {
    const at = this.workers.indexOf(gone);
    if (at >= 0) this.workers.splice(at, 1);
  }

  async close(): Promise<void> {
    const all = this.workers.splice(0);
    await Promise.all(all.map((w) => w.terminate()));
  }
}
