// The engine's own account of a request's time (queue, prefill, decode) and of each step's work, from the real
// EngineCore and scheduler under a clock the test moves: 10 ms per step. Oracles: the step at which each request
// must be scheduled, get its first token and its last one, worked out by hand from FCFS admission with one running
// sequence and a 16-token chunk budget.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { EngineEvent, GenerationRequest } from '../src/engine/engine-api.js';
import { validateSamplingParams } from '../src/engine/sampling-params.js';
import { SteppedEngine } from './helpers/stepped-engine.js';

const STEP_MS = 10;

function request(id: string, promptLen: number, maxTokens: number): GenerationRequest {
  return {
    id, promptIds: Array.from({ length: promptLen }, (_, i) => (i * 7) % 50), sampling: validateSamplingParams({ temperature: 0 }), maxTokens, stopIds: [],
  };
}

describe('engine request timing and step records', () => {
  it('splits each request\'s time into queue, prefill and decode, and counts each step\'s tokens', async () => {
    let clock = 0;
    const engine = new SteppedEngine({
      vocabSize: 64, token: 5, numBlocks: 64, blockSize: 16, chunkSize: 16, maxBatchSize: 1, maxQueue: 8, now: () => clock,
    });
    const steps: { tokens: number; prefillTokens: number }[] = [];
    engine.onStep((s) => steps.push(s));
    const finished = new Map<string, EngineEvent & { type: 'finished' }>();
    const listen = (e: EngineEvent): void => {
      if (e.type === 'finished') finished.set(e.id, e);
    };
    // Both arrive at t = 0; one runs at a time.
    await engine.submit(request('a', 40, 4), listen);
    await engine.submit(request('b', 10, 2), listen);
    await engine.submit(request('c', 10, 2), listen);
    for (let k = 1; engine.hasWork(); k++) {
      clock = k * STEP_MS; // step k runs at t = 10k ms
      if (k === 5) engine.abort('c'); // still waiting behind a
      engine.step();
      assert.ok(k < 50);
    }
    const seconds = (ms: number): number => ms / 1000;
    // a: scheduled at step 1; prefill chunks 16 + 16 + 8 in steps 1–3, first token at step 3; tokens 2–4 in steps 4–6.
    assert.deepEqual(finished.get('a')!.timing, { queueSeconds: seconds(10), prefillSeconds: seconds(20), decodeSeconds: seconds(30) });
    // c: aborted at step 5 while waiting (its end is then): all queue.
    assert.equal(finished.get('c')!.reason, 'abort');
    assert.deepEqual(finished.get('c')!.timing, { queueSeconds: seconds(50), prefillSeconds: 0, decodeSeconds: 0 });
    // b: waits until a is done (step 6), scheduled at step 7 with its whole prompt (first token), last token at step 8.
    assert.deepEqual(finished.get('b')!.timing, { queueSeconds: seconds(70), prefillSeconds: 0, decodeSeconds: seconds(10) });
    assert.deepEqual(steps, [
      { tokens: 16, prefillTokens: 16 }, { tokens: 16, prefillTokens: 16 }, { tokens: 8, prefillTokens: 8 },
      { tokens: 1, prefillTokens: 0 }, { tokens: 1, prefillTokens: 0 }, { tokens: 1, prefillTokens: 0 },
      { tokens: 10, prefillTokens: 10 }, { tokens: 1, prefillTokens: 0 },
    ]);
    assert.equal(engine.core.stats().steps, steps.length);
  });
});
