// The serving metrics on synthetic streams with known timings: every expected number is derived by hand in the
// comments from the definitions (vLLM bench serve's; percentiles as numpy.percentile's default linear method).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { computeMetrics, percentile, summarize } from '../src/bench/metrics.js';
import { SseParser } from '../src/bench/sse.js';
import { StreamRecorder, type RequestRecord } from '../src/bench/stream-record.js';

const chat = (content: string | undefined, finish: string | null = null) =>
  JSON.stringify({ choices: [{ index: 0, delta: content === undefined ? { role: 'assistant' } : { content }, finish_reason: finish }] });
const text = (t: string, finish: string | null = null) => JSON.stringify({ choices: [{ index: 0, text: t, finish_reason: finish }] });
const usage = (prompt: number | undefined, completion: number) =>
  JSON.stringify({ choices: [], usage: { ...(prompt !== undefined ? { prompt_tokens: prompt } : {}), completion_tokens: completion } });

/** Feeds [time, data] events to a recorder started at `start` and closes the stream at `end`. */
function stream(start: number, clientPrompt: number, events: [number, string][], end: number): RequestRecord {
  const r = new StreamRecorder(start, clientPrompt);
  for (const [t, d] of events) r.onData(t, d);
  return r.finish(end);
}

const close = (a: number | null, b: number) => assert.ok(a !== null && Math.abs(a - b) < 1e-9, `${a} ≠ ${b}`);

describe('bench metrics', () => {
  // A (chat): starts at 0. A role-only chunk at 10 is not content. Content at 50, 70, 100; the finish chunk (empty
  //   content) and usage come later and move nothing. TTFT 50, ITL [20, 30], E2E 100. usage says 4 tokens (one chunk
  //   carried two), so TPOT = (100 − 50) / (4 − 1) = 16.666…; prompt 12 from usage.
  const a = stream(0, 99, [[10, chat(undefined)], [50, chat('Hel')], [70, chat('lo')], [100, chat(' world')], [100, chat('', 'stop')], [105, usage(12, 4)], [106, '[DONE]']], 107);
  // B (completions): starts at 200; content at 230, 240, 255, 265, 275. TTFT 30, ITL [10, 15, 10, 10], E2E 75,
  //   5 tokens, TPOT = (75 − 30) / 4 = 11.25; prompt 8 from usage.
  const b = stream(200, 99, [[230, text('a')], [240, text('b')], [255, text('c')], [265, text('d')], [275, text('e')], [276, text('', 'length')], [276, usage(8, 5)], [277, '[DONE]']], 278);
  // C: starts at 300, one token at 340 → TTFT 40, E2E 40, no ITL, no TPOT (only 1 token). No usage.prompt_tokens:
  //   the client's count 7 is used.
  const c = stream(300, 7, [[340, text('x')], [341, usage(undefined, 1)], [341, '[DONE]']], 342);
  // D: an HTTP error, sent at 250 and failed at 310.
  const d = new StreamRecorder(250, 5).fail(310, 'HTTP 500 Internal Server Error: boom');
  // E: sent at 305, one content chunk at 420, then the connection closes at 430 without [DONE] or a finish_reason.
  const e = stream(305, 5, [[420, text('y')]], 430);

  it('records one request per stream: TTFT, ITL, E2E from content chunks only', () => {
    assert.equal(a.ok, true);
    assert.equal(a.ttftMs, 50);
    assert.deepEqual(a.itlMs, [20, 30]);
    assert.equal(a.e2eMs, 100);
    assert.equal(a.text, 'Hello world');
    assert.equal(a.completionTokens, 4);
    assert.equal(a.promptTokens, 12);
    assert.deepEqual([b.ttftMs, b.e2eMs, b.itlMs], [30, 75, [10, 15, 10, 10]]);
    assert.equal(e.ok, false);
    assert.match(e.error!, /before \[DONE\]/);
  });

  it('aggregates as vLLM does (hand-computed)', () => {
    // Duration 0.5 s; 3 completed (A, B, C), 2 failed (D, E).
    const m = computeMetrics([a, b, c, d, e], 0.5);
    assert.equal(m.completed, 3);
    assert.equal(m.failed, 2);
    // Input 12 + 8 + 7 = 27; output 4 + 5 + 1 = 10.
    assert.equal(m.total_input_tokens, 27);
    assert.equal(m.total_output_tokens, 10);
    close(m.request_throughput, 6); // 3 / 0.5
    close(m.output_throughput, 20); // 10 / 0.5
    close(m.total_token_throughput, 74); // 37 / 0.5
    // TTFT [50, 30, 40] → sorted [30, 40, 50]: mean 40, median 40, p90 at rank 1.8 → 40 + 0.8·10 = 48,
    // p99 at rank 1.98 → 49.8, std = sqrt((100 + 0 + 100) / 3).
    close(m.ttft_ms.mean, 40);
    close(m.ttft_ms.median, 40);
    close(m.ttft_ms.p90, 48);
    close(m.ttft_ms.p99, 49.8);
    close(m.ttft_ms.std, Math.sqrt(200 / 3));
    // ITL pooled [20, 30, 10, 15, 10, 10] → sorted [10, 10, 10, 15, 20, 30]: mean 95/6, median at rank 2.5 → 12.5,
    // p90 at rank 4.5 → 25, p99 at rank 4.95 → 29.5.
    assert.equal(m.itl_ms.n, 6);
    close(m.itl_ms.mean, 95 / 6);
    close(m.itl_ms.median, 12.5);
    close(m.itl_ms.p90, 25);
    close(m.itl_ms.p99, 29.5);
    // TPOT [50/3, 11.25] (C has one token): mean (50/3 + 11.25) / 2, median the same, p90 at rank 0.9 →
    // 11.25 + 0.9·(50/3 − 11.25), p99 at rank 0.99.
    const t1 = 50 / 3;
    assert.equal(m.tpot_ms.n, 2);
    close(m.tpot_ms.mean, (t1 + 11.25) / 2);
    close(m.tpot_ms.median, (t1 + 11.25) / 2);
    close(m.tpot_ms.p90, 11.25 + 0.9 * (t1 - 11.25));
    close(m.tpot_ms.p99, 11.25 + 0.99 * (t1 - 11.25));
    // E2E [100, 75, 40] → sorted [40, 75, 100]: mean 215/3, median 75, p90 at rank 1.8 → 95, p99 → 99.5.
    close(m.e2el_ms.mean, 215 / 3);
    close(m.e2el_ms.median, 75);
    close(m.e2el_ms.p90, 95);
    close(m.e2el_ms.p99, 99.5);
    // In flight: A [0,107) … at t = 305 C [300, 342), D [250, 310) and E [305, 430) overlap → 3.
    assert.equal(m.max_concurrent_requests, 3);
    assert.deepEqual(m.output_tokens_from, { usage: 3, retokenized: 0, content_chunks: 0 });
    assert.deepEqual(m.input_tokens_from, { usage: 2, client: 1 });
    assert.deepEqual(
      m.errors.map((x) => x.count),
      [1, 1],
    );
    assert.ok(m.errors.some((x) => x.message === 'HTTP 500 Internal Server Error: boom'));
  });

  it('without usage: re-tokenizes with the given counter, else counts content chunks', () => {
    // Three chunks "one", " two", " three", no usage: TTFT 10, E2E 30.
    const f = stream(0, 3, [[10, text('one')], [20, text(' two')], [30, text(' three', 'stop')], [31, '[DONE]']], 32);
    const words = (s: string) => s.trim().split(/\s+/).length * 2; // a stand-in tokenizer: 2 tokens a word → 6
    const m1 = computeMetrics([f], 1, words);
    assert.equal(m1.total_output_tokens, 6);
    assert.deepEqual(m1.output_tokens_from, { usage: 0, retokenized: 1, content_chunks: 0 });
    close(m1.tpot_ms.mean, (30 - 10) / 5); // (E2E − TTFT) / (6 − 1)
    const m2 = computeMetrics([f], 1);
    assert.equal(m2.total_output_tokens, 3);
    assert.deepEqual(m2.output_tokens_from, { usage: 0, retokenized: 0, content_chunks: 1 });
  });

  it('percentiles match numpy.percentile (linear) on small cases', () => {
    // np.percentile([1, 2, 3, 4], 90) = 3.7 (rank 2.7); [5] → 5 for any p; median of [1, 2, 3, 4] = 2.5.
    close(percentile([1, 2, 3, 4], 90), 3.7);
    close(percentile([5], 99), 5);
    close(summarize([4, 1, 3, 2]).median, 2.5);
    assert.equal(summarize([]).mean, null);
  });

  it('error events and streams with no content fail with their message', () => {
    const err = stream(0, 1, [[5, JSON.stringify({ error: { message: 'KV cache exhausted' } })]], 6);
    assert.equal(err.ok, false);
    assert.match(err.error!, /KV cache exhausted/);
    const empty = stream(0, 1, [[5, chat(undefined)], [6, '[DONE]']], 7);
    assert.equal(empty.ok, false);
    assert.match(empty.error!, /without any content/);
  });
});

describe('SSE parser', () => {
  it('reassembles events split anywhere, across CRLF and inside a UTF-8 character', () => {
    const wire = Buffer.from(': ping\r\ndata: {"a":"é"}\r\n\r\ndata: line1\ndata: line2\n\nevent: x\ndata:[DONE]\n\n', 'utf8');
    // Every split point of the byte stream must give the same three events.
    for (let cut = 1; cut < wire.length; cut++) {
      const p = new SseParser();
      const got = [...p.push(wire.subarray(0, cut)), ...p.push(wire.subarray(cut)), ...p.end()];
      assert.deepEqual(got, ['{"a":"é"}', 'line1\nline2', '[DONE]'], `split at ${cut}`);
    }
  });

  it('returns an event left unterminated when the stream ends', () => {
    const p = new SseParser();
    assert.deepEqual(p.push('data: {"usage":1}'), []);
    assert.deepEqual(p.end(), ['{"usage":1}']);
  });
});
