// The HTTP thread's handle on the engine worker: an EngineClient whose calls become
// messages, and whose per-request callbacks are fed from the worker's step messages.
import { Worker } from 'node:worker_threads';
import {
  RequestRejectedError, emptyEngineStats, type EngineClient, type EngineEvent, type EngineStats, type GenerationRequest, type StepRecord,
} from './engine-api.js';
import type { EngineOptions, EngineReadyInfo, FromWorker, ToWorker } from './worker-protocol.js';

interface Pending {
  onEvent: (e: EngineEvent) => void;
  admit?: { resolve: () => void; reject: (e: Error) => void };
}

export class WorkerEngineClient implements EngineClient {
  private readonly requests = new Map<string, Pending>();
  private readonly stepListeners = new Set<(step: StepRecord) => void>();
  private latest: EngineStats = emptyEngineStats();
  private lastStepMs = 0;
  private stopped: Promise<void> | undefined;
  private crashed: Error | undefined;

  private constructor(
    private readonly worker: Worker,
    readonly info: EngineReadyInfo,
  ) {
    // Before the first step the worker has sent no stats; the cache it reported at start is all free.
    this.latest = { ...emptyEngineStats(), kvBlocksFree: info.kvBlocks, kvBlocksTotal: info.kvBlocks };
    worker.on('message', (m: FromWorker) => this.onMessage(m));
    worker.on('error', (err) => this.fail(err));
    worker.on('exit', (code) => {
      if (!this.stopped) this.fail(new Error(`engine worker exited with code ${code}`));
    });
  }

  /** Stops the worker as a crash would (tests of the server's failure handling). */
  async kill(): Promise<void> {
    await this.worker.terminate();
  }

  /** Starts the worker and resolves once the model is loaded. */
  static start(opts: EngineOptions): Promise<WorkerEngineClient> {
    const worker = new Worker(new URL('./worker-main.js', import.meta.url), { workerData: opts });
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => reject(err);
      worker.once('error', onError);
      worker.once('message', (m: FromWorker) => {
        worker.off('error', onError);
        if (m.type === 'ready') resolve(new WorkerEngineClient(worker, m.info));
        else if (m.type === 'loadError') reject(new Error(m.message));
        else reject(new Error(`engine worker sent ${m.type} before ready`));
      });
    });
  }

  submit(req: GenerationRequest, onEvent: (e: EngineEvent) => void): Promise<void> {
    if (this.crashed) return Promise.reject(this.crashed);
    if (this.requests.has(req.id)) return Promise.reject(new RequestRejectedError('invalid', `request id ${req.id} is in use`));
    return new Promise((resolve, reject) => {
      this.requests.set(req.id, { onEvent, admit: { resolve, reject } });
      this.send({ type: 'submit', req });
    });
  }

  abort(id: string): void {
    if (this.requests.has(id)) this.send({ type: 'abort', id });
  }

  /** The latest stats the worker sent; throws once the worker is gone (so /health says so). */
  stats(): EngineStats {
    if (this.crashed) throw this.crashed;
    return this.latest;
  }

  onStep(listener: (step: StepRecord) => void): () => void {
    this.stepListeners.add(listener);
    return () => this.stepListeners.delete(listener);
  }

  /** One sequence can fill the whole KV cache, no more. */
  get maxSequenceTokens(): number {
    return this.info.kvTokens;
  }

  /** Wall time of the engine's last step, for metrics. */
  get stepMs(): number {
    return this.lastStepMs;
  }

  shutdown(): Promise<void> {
    this.stopped ??= new Promise<void>((resolve) => {
      this.worker.once('exit', () => resolve());
      this.send({ type: 'shutdown' });
      // A worker stuck in a long step still goes: terminate after a grace period.
      setTimeout(() => void this.worker.terminate(), 5000).unref();
    });
    return this.stopped;
  }

  private send(m: ToWorker): void {
    this.worker.postMessage(m);
  }

  private onMessage(m: FromWorker): void {
    switch (m.type) {
      case 'admitted': {
        this.latest = m.stats;
        const p = this.requests.get(m.id);
        p?.admit?.resolve();
        if (p) delete p.admit;
        break;
      }
      case 'rejected': {
        const p = this.requests.get(m.id);
        this.requests.delete(m.id);
        p?.admit?.reject(new RequestRejectedError(m.kind, m.message));
        break;
      }
      case 'step':
        this.latest = m.stats;
        this.lastStepMs = m.stepMs;
        for (const step of m.steps) for (const listener of this.stepListeners) listener(step);
        for (const e of m.events) {
          const p = this.requests.get(e.id);
          if (!p) continue;
          if (e.type === 'finished') this.requests.delete(e.id);
          p.onEvent(e);
        }
        break;
      default:
        break;
    }
  }

  /** The worker died: every open request ends with an error, later submissions are refused. */
  private fail(err: Error): void {
    this.crashed = new Error(`engine worker failed: ${err.message}`);
    for (const [id, p] of this.requests) {
      if (p.admit) p.admit.reject(this.crashed);
      else p.onEvent({ type: 'finished', id, reason: 'error', error: this.crashed.message, promptTokens: 0, cachedTokens: 0, completionTokens: 0 });
    }
    this.requests.clear();
  }
}
