// Admission errors of the scheduler; the HTTP layer maps them to 400 (too large) and 503 (queue full).

/** The request can never run: prompt + max_tokens exceeds the model's context or the whole KV cache. */
export class RequestTooLargeError extends Error {
  override name = 'RequestTooLargeError';
  constructor(
    message: string,
    readonly promptTokens: number,
    readonly maxTokens: number,
    /** The limit exceeded, in tokens. */
    readonly limit: number,
  ) {
    super(message);
  }
}

/** The waiting queue holds maxQueue requests already; the client should retry later. */
export class QueueFullError extends Error {
  override name = 'QueueFullError';
  constructor(readonly maxQueue: number) {
    super(`the request queue is full (${maxQueue} waiting requests); retry later`);
  }
}
