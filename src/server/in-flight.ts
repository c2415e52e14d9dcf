// The engine requests the HTTP tier has in flight, so a shutdown can wait for them and, past its grace period,
// end each one the way an engine failure ends it: a stream gets a final error event and `[DONE]`, a waiting
// client a 503, instead of a connection cut mid-answer.
import type { EngineClient, EngineEvent, EngineStats, GenerationRequest, StepRecord } from '../engine/engine-api.js';

/** The error text of requests ended by a shutdown (engineFailure answers it with a 503, not a 500). */
export const SHUTDOWN_MESSAGE = 'the server is shutting down; retry on another instance or later';

/** An EngineClient that passes everything through and remembers which requests have not finished. */
export class InFlightRequests implements EngineClient {
  private readonly open = new Map<string, (e: EngineEvent) => void>();
  private emptied: (() => void) | undefined;

  constructor(private readonly inner: EngineClient) {}

  get size(): number {
    return this.open.size;
  }

  async submit(req: GenerationRequest, onEvent: (e: EngineEvent) => void): Promise<void> {
    this.open.set(req.id, onEvent);
    try {
      await this.inner.submit(req, (e) => {
        // A request ended by cut() hears nothing more from the engine.
        if (!this.open.has(e.id)) return;
        if (e.type === 'finished') this.forget(e.id);
        onEvent(e);
      });
    } catch (err) {
      this.forget(req.id);
      throw err;
    }
  }

  abort(id: string): void {
    this.inner.abort(id);
  }

  stats(): EngineStats {
    return this.inner.stats();
  }

  onStep(listener: (step: StepRecord) => void): () => void {
    return this.inner.onStep(listener);
  }

  shutdown(): Promise<void> {
    return this.inner.shutdown();
  }

  /** Resolves when nothing is in flight, or after `ms`; true when nothing is. */
  async settled(ms: number): Promise<boolean> {
    if (this.open.size === 0) return true;
    let timer: NodeJS.Timeout | undefined;
    const empty = new Promise<boolean>((resolve) => (this.emptied = () => resolve(true)));
    const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), ms)));
    const done = await Promise.race([empty, late]);
    clearTimeout(timer);
    this.emptied = undefined;
    return done;
  }

  /** Ends every request in flight with `message` (and aborts it in the engine); returns how many there were. */
  cut(message: string): number {
    const ids = [...this.open.keys()];
    for (const id of ids) {
      const onEvent = this.open.get(id)!;
      this.forget(id);
      this.inner.abort(id);
      onEvent({ type: 'finished', id, reason: 'error', error: message, promptTokens: 0, cachedTokens: 0, completionTokens: 0 });
    }
    return ids.length;
  }

  private forget(id: string): void {
    this.open.delete(id);
    if (this.open.size === 0) this.emptied?.();
  }
}
