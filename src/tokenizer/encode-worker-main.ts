// Entry of an encode worker thread (encode-workers.ts): builds the tokenizer again from its source, then encodes
// what it is sent, one text at a time, answering with the ids in a transferred Int32Array.
import { parentPort, workerData } from 'node:worker_threads';
import { loadTokenizerFromDir } from './from-hf.js';
import { loadTokenizerFromGguf } from './from-gguf.js';
import type { EncodeJob, EncodeReply } from './encode-workers.js';
import type { Tokenizer, TokenizerSource } from './types.js';

function load(source: TokenizerSource): Tokenizer {
  switch (source.kind) {
    case 'hf-dir': return loadTokenizerFromDir(source.dir);
    case 'gguf-metadata': return loadTokenizerFromGguf(source.metadata);
  }
}

const port = parentPort!;
const tokenizer = load((workerData as { source: TokenizerSource }).source);
port.on('message', (job: EncodeJob) => {
  let reply: EncodeReply;
  try {
    reply = { id: job.id, ids: Int32Array.from(tokenizer.encode(job.text, job.opts)) };
  } catch (e) {
    reply = { id: job.id, error: e instanceof Error ? e.message : String(e) };
  }
  port.postMessage(reply, 'ids' in reply ? [reply.ids.buffer as ArrayBuffer] : []);
});
