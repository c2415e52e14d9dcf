// Held-out accuracy of the demo model through our own server and the official openai client, at temperature 0:
// per task, 2-digit addition/subtraction, and the whole mix; optionally agreement with other answers of the same
// questions (the PyTorch run's gpu-answers.jsonl). Usage:
//   node dist/scripts/demo-model/eval.js [--gguf F | --model_path DIR] [--backend cpu|cuda] [--compare answers.jsonl]
//     [--heldout questions.jsonl] [--out result.json] [--limit N] [--concurrency N]
import { writeFileSync } from 'node:fs';
import { demoModelPath } from '../../src/make-model/demo-model.js';
import { readHeldout, readJsonl, type HeldoutItem } from './heldout.js';
import { ask, startLocalServer } from './local-server.js';

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

/** Runs `fn` over `xs` with at most `n` calls in flight; results in input order. */
async function pooled<T, R>(xs: T[], n: number, fn: (x: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(xs.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < xs.length) {
      const i = next++;
      out[i] = await fn(xs[i]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, xs.length) }, worker));
  return out;
}

function table(items: HeldoutItem[], ok: boolean[]): Record<string, { correct: number; total: number; accuracy: number }> {
  const per: Record<string, { correct: number; total: number; accuracy: number }> = {};
  const bump = (key: string, good: boolean) => {
    const e = (per[key] ??= { correct: 0, total: 0, accuracy: 0 });
    e.correct += good ? 1 : 0;
    e.total += 1;
    e.accuracy = e.correct / e.total;
  };
  items.forEach((it, i) => bump(it.task, ok[i]!));
  items.forEach((_, i) => bump('ALL', ok[i]!)); // after the tasks, so it prints last
  return per;
}

async function main(): Promise<void> {
  const modelPath = flag('--model_path');
  const location = modelPath ? { modelPath } : { ggufPath: flag('--gguf') ?? demoModelPath() };
  const limit = Number(flag('--limit') ?? 0);
  const all = readHeldout(flag('--heldout'));
  const items = limit > 0 ? all.slice(0, limit) : all;
  const backend = flag('--backend') === 'cuda' ? 'cuda' : 'cpu';
  const server = await startLocalServer(location, { backend });
  const t0 = performance.now();
  let answers: string[];
  try {
    answers = await pooled(items, Number(flag('--concurrency') ?? 32), (it) => ask(server.client, it.question));
  } finally {
    await server.close();
  }
  const seconds = (performance.now() - t0) / 1000;
  const acc = table(items, items.map((it, i) => answers[i] === it.answer));
  console.log(`${items.length} questions through ${server.url} (${JSON.stringify(location)}, ${backend}) in ${seconds.toFixed(0)} s`);
  for (const [task, a] of Object.entries(acc)) console.log(`${task.padEnd(14)} ${String(a.correct).padStart(5)}/${String(a.total).padEnd(5)} ${(100 * a.accuracy).toFixed(1)}%`);
  let agreement: { same: number; total: number } | undefined;
  const comparePath = flag('--compare');
  if (comparePath) {
    const other = new Map(readJsonl<HeldoutItem & { model: string }>(comparePath).map((r) => [r.question, r.model]));
    const both = items.map((it, i) => [other.get(it.question), answers[i]] as const).filter(([o]) => o !== undefined);
    agreement = { same: both.filter(([o, a]) => o === a).length, total: both.length };
    console.log(`agreement with ${comparePath}: ${agreement.same}/${agreement.total} answers identical`);
  }
  const out = flag('--out');
  if (out) {
    const rows = items.map((it, i) => ({ ...it, model: answers[i] }));
    writeFileSync(out, JSON.stringify({ location, backend, seconds, accuracy: acc, agreement, answers: rows }, null, 1) + '\n');
  }
}

await main();
