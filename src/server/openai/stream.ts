// The SSE loop both OpenAI routes share: one chunk per text delta and per finished choice, an engine failure as an
// error event (headers are already out), the optional usage chunk, then `data: [DONE]`.
import type { FastifyReply } from 'fastify';
import { engineFailure, totalUsage, type ChoiceOutput, type ChoiceUsage, type Generation } from '../generation.js';
import { EventStream } from '../sse.js';
import { usageBody } from './params.js';

export interface ChunkShape {
  /** The envelope of every chunk: id, object, created, model, and the given choices. */
  chunk(choices: unknown[], extra?: Record<string, unknown>): Record<string, unknown>;
  /** The choice entry for a delta, or undefined when it carries nothing worth a chunk. */
  delta(out: ChoiceOutput & { kind: 'delta' }): unknown;
  /** The closing entry of one choice, with its finish_reason. */
  end(out: ChoiceOutput & { kind: 'end' }): unknown;
  /** Chunks sent before any output (chat: the assistant role of each choice). */
  preamble?: unknown[];
}

export async function streamOpenAi(
  reply: FastifyReply,
  gen: Generation,
  shape: ChunkShape,
  usage: { include: boolean; promptOf: (index: number) => number },
): Promise<void> {
  const stream = new EventStream(reply, 'sse');
  stream.open();
  for (const c of shape.preamble ?? []) stream.send(c);
  const ended: { index: number; usage: ChoiceUsage }[] = [];
  let failed = false;
  gen.attach((out) => {
    if (out.kind === 'delta') {
      const choice = shape.delta(out);
      if (choice !== undefined) stream.send(shape.chunk([choice]));
    } else if (out.kind === 'end') {
      ended.push(out);
      stream.send(shape.chunk([shape.end(out)]));
    } else if (!failed) {
      // As vLLM does: the error travels as an event, the other choices stop, the stream ends.
      failed = true;
      stream.send(engineFailure(out.message).openAiBody());
      gen.cancel();
    }
  });
  await gen.done;
  if (usage.include && !failed) stream.send(shape.chunk([], { usage: usageBody(totalUsage(ended, usage.promptOf)) }));
  stream.end();
}
