// Entry of the engine worker thread: loads the model, then runs steps while there is work,
// applying submissions and cancellations between steps. One message per step carries every
// request's new tokens.
import { parentPort, workerData } from 'node:worker_threads';
import { RequestRejectedError } from './engine-api.js';
import type { EngineCore } from './engine-core.js';
import { createEngine } from './engine-factory.js';
import type { EngineOptions, FromWorker, ToWorker } from './worker-protocol.js';

const port = parentPort;
if (!port) throw new Error('worker-main.ts must run in a worker thread');
const post = (m: FromWorker): void => port.postMessage(m);

// For tests of the server's loading state only: hold the load this many milliseconds. Unset, it costs nothing.
const testDelayMs = Number(process.env.KT_TEST_LOAD_DELAY_MS ?? 0);
if (testDelayMs > 0) await new Promise((resolve) => setTimeout(resolve, testDelayMs));

let core: EngineCore;
try {
  const engine = createEngine(workerData as EngineOptions);
  core = engine.core;
  post({ type: 'ready', info: engine.info });
} catch (err) {
  post({ type: 'loadError', message: (err as Error).message });
  process.exit(1);
}

let stepQueued = false;
let stopping = false;

function runStep(): void {
  stepQueued = false;
  const t0 = performance.now();
  const events = core.step();
  if (events.length > 0 || core.hasWork()) {
    post({ type: 'step', events, stats: core.stats(), stepMs: performance.now() - t0, steps: core.takeStepRecords() });
  }
  queueStep();
}

/** setImmediate lets pending messages (new requests, cancellations) in before the next step. */
function queueStep(): void {
  if (!stepQueued && !stopping && core.hasWork()) {
    stepQueued = true;
    setImmediate(runStep);
  }
}

port.on('message', (msg: ToWorker) => {
  switch (msg.type) {
    case 'submit':
      try {
        core.submit(msg.req);
        post({ type: 'admitted', id: msg.req.id, stats: core.stats() });
      } catch (err) {
        const kind = err instanceof RequestRejectedError ? err.kind : 'invalid';
        post({ type: 'rejected', id: msg.req.id, kind, message: (err as Error).message });
      }
      break;
    case 'abort':
      core.abort(msg.id);
      break;
    case 'shutdown':
      stopping = true;
      post({ type: 'stopped' });
      port.close();
      return;
  }
  queueStep();
});
