// One streamed chat completion: posts the conversation to /v1/chat/completions with stream: true and reports
// each delta (answer text and reasoning apart) as it comes, then the totals. Aborting `signal` stops the request;
// the server sees the connection close and cancels the engine's work.
import { ApiError, apiFetch, messageOf } from './api.js';
import { sseData } from './sse.js';

/**
 * `params`: { model, messages, temperature?, top_p?, max_tokens? }. `onDelta({content, reasoning})` per chunk.
 * Resolves to { content, reasoning, finishReason, usage, firstTokenMs, tokensPerSecond }; throws an ApiError
 * for a refused request or an error event, and the AbortError when stopped.
 */
export async function streamChat(params, { signal, onDelta }) {
  const started = performance.now();
  const res = await apiFetch('/v1/chat/completions', {
    json: { ...params, stream: true, stream_options: { include_usage: true } },
    signal,
  });
  const out = { content: '', reasoning: '', finishReason: undefined, usage: undefined, firstTokenMs: undefined, tokensPerSecond: undefined };
  let firstAt;
  for await (const data of sseData(res.body)) {
    if (data === '[DONE]') break;
    const error = messageOf(data);
    // Headers were out before the engine failed: the error travels as an event of the 200 stream.
    if (error !== undefined) throw new ApiError(res.status, error);
    const chunk = JSON.parse(data);
    if (chunk.usage) out.usage = chunk.usage;
    const choice = chunk.choices?.[0];
    if (!choice) continue;
    if (choice.finish_reason) out.finishReason = choice.finish_reason;
    const content = choice.delta?.content ?? '';
    const reasoning = choice.delta?.reasoning_content ?? '';
    if (!content && !reasoning) continue;
    firstAt ??= performance.now();
    out.content += content;
    out.reasoning += reasoning;
    onDelta({ content, reasoning });
  }
  const ended = performance.now();
  if (firstAt !== undefined) {
    out.firstTokenMs = firstAt - started;
    const tokens = out.usage?.completion_tokens;
    // The first token's wait is prefill; the rate after it is the decode speed a user feels.
    if (tokens > 1 && ended > firstAt) out.tokensPerSecond = ((tokens - 1) * 1000) / (ended - firstAt);
  }
  return out;
}
