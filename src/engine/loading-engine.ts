// An EngineClient that stands in for an engine still loading its model, and becomes it once loaded. The server
// binds its port and answers (/health: 503 "loading") before the weights are read, as llama-server does, and sees
// readiness through the one EngineClient it was built with.
import {
  emptyEngineStats, type EngineClient, type EngineEvent, type EngineStats, type GenerationRequest, type StepRecord,
} from './engine-api.js';

export const LOADING_MESSAGE = 'the model is still loading; retry when /health says ok';

/** A request reached the engine before its model was loaded (the server answers 503 `model_loading`). */
export class EngineLoadingError extends Error {
  override readonly name = 'EngineLoadingError';
}

export class LoadingEngine<E extends EngineClient = EngineClient> implements EngineClient {
  private engine: E | undefined;
  private failure: Error | undefined;
  /** Step listeners registered before the engine existed, handed to it when it comes. */
  private readonly early = new Map<(step: StepRecord) => void, () => void>();

  /** The loaded engine; every call goes to it from now on. */
  ready(engine: E): void {
    if (this.engine || this.failure) throw new Error('LoadingEngine: already settled');
    this.engine = engine;
    for (const listener of this.early.keys()) this.early.set(listener, engine.onStep(listener));
  }

  /** Loading failed: stats() throws it (so /health says "error") and submissions are refused with it. */
  fail(err: Error): void {
    if (this.engine || this.failure) throw new Error('LoadingEngine: already settled');
    this.failure = err;
  }

  /** The loaded engine, if it is. */
  get current(): E | undefined {
    return this.engine;
  }

  loading(): boolean {
    return this.engine === undefined && this.failure === undefined;
  }

  get maxSequenceTokens(): number | undefined {
    return this.engine?.maxSequenceTokens;
  }

  submit(req: GenerationRequest, onEvent: (e: EngineEvent) => void): Promise<void> {
    if (this.engine) return this.engine.submit(req, onEvent);
    return Promise.reject(this.failure ?? new EngineLoadingError(LOADING_MESSAGE));
  }

  onStep(listener: (step: StepRecord) => void): () => void {
    if (this.engine) return this.engine.onStep(listener);
    this.early.set(listener, () => {});
    return () => {
      this.early.get(listener)?.();
      this.early.delete(listener);
    };
  }

  abort(id: string): void {
    this.engine?.abort(id);
  }

  /** Zeros while loading: nothing runs yet and the KV cache does not exist. */
  stats(): EngineStats {
    if (this.engine) return this.engine.stats();
    if (this.failure) throw this.failure;
    return emptyEngineStats();
  }

  shutdown(): Promise<void> {
    return this.engine?.shutdown() ?? Promise.resolve();
  }
}
