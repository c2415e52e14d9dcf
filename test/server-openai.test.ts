// The OpenAI routes driven by the official `openai` npm client over a fake engine and the fixture models' real
// tokenizers and chat templates. Oracles: the text the fake engine was scripted to "generate" (encoded with the
// fixture tokenizer), the fixture chat templates' literal turn markers, and the fake engine's logprob rule.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import OpenAI from 'openai';
import type { GenerationRequest } from '../src/engine/engine-api.js';
import { ChatTemplate } from '../src/tokenizer/index.js';
import { fakeLogprob, fixtureTokenizer, startFakeServer, type FakeServer } from './helpers/fake-engine.js';
import { needFixtures } from './fixtures.js';

const REPLY = 'Hello there, my friend. How are you today?';

function client(s: FakeServer): OpenAI {
  return new OpenAI({ baseURL: `${s.url}/v1`, apiKey: 'unused', maxRetries: 0 });
}

/** Extra request fields the client's types don't know (vLLM extensions), passed through untouched. */
function extra(fields: Record<string, unknown>): Record<string, never> {
  return fields as Record<string, never>;
}

describe('OpenAI API with the official client', needFixtures, () => {
  let s: FakeServer;
  let oa: OpenAI;
  const llama = () => fixtureTokenizer('llama');
  // Each request "generates" REPLY, or the text after "say:" in its prompt, then EOS.
  const script = (req: GenerationRequest): number[] => {
    const prompt = llama().decode(req.promptIds);
    const m = /say:(.*?)(<\|eot_id\|>|$)/s.exec(prompt);
    return llama().encode(m ? m[1]! : REPLY, { addSpecialTokens: false });
  };

  before(async () => {
    s = await startFakeServer({ script, cachedTokens: (r) => Math.min(16, r.promptIds.length) });
    oa = client(s);
  });
  after(() => s.close());

  const lastReq = (): GenerationRequest => s.engine.submitted[s.engine.submitted.length - 1]!;

  it('chat, not streamed: text, template, usage, finish_reason, default sampling', async () => {
    const r = await oa.chat.completions.create({ model: 'anything', messages: [{ role: 'user', content: 'Hi' }] });
    assert.equal(r.object, 'chat.completion');
    assert.equal(r.model, 'tiny-llama');
    assert.equal(r.choices.length, 1);
    assert.equal(r.choices[0]!.message.role, 'assistant');
    assert.equal(r.choices[0]!.message.content, REPLY);
    assert.equal(r.choices[0]!.finish_reason, 'stop');
    const req = lastReq();
    // The fixture's Llama-3 template: BOS, one user turn, an open assistant header.
    assert.equal(
      llama().decode(req.promptIds),
      '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n',
    );
    const replyTokens = llama().encode(REPLY, { addSpecialTokens: false }).length;
    assert.deepEqual(r.usage, {
      prompt_tokens: req.promptIds.length,
      completion_tokens: replyTokens + 1, // and the EOS
      total_tokens: req.promptIds.length + replyTokens + 1,
      prompt_tokens_details: { cached_tokens: 16 },
    });
    assert.deepEqual(req.stopIds.slice().sort(), llama().eosIds.slice().sort());
    assert.equal(req.sampling.temperature, 1);
    assert.equal(req.sampling.topP, 1);
    assert.equal(req.sampling.logprobs, 0);
    assert.equal(req.maxTokens, 64, 'no max_tokens: --max_new_tokens');
  });

  it('chat, streamed with include_usage: deltas add up, final usage chunk has no choices', async () => {
    const stream = await oa.chat.completions.create({
      model: 'm',
      messages: [{ role: 'user', content: 'Hi' }],
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let role: string | undefined;
    let finish: string | null | undefined;
    let usage: OpenAI.CompletionUsage | null | undefined;
    let chunks = 0;
    for await (const c of stream) {
      chunks++;
      assert.equal(c.object, 'chat.completion.chunk');
      if (c.usage) {
        usage = c.usage;
        assert.deepEqual(c.choices, []);
        continue;
      }
      const ch = c.choices[0]!;
      role ??= ch.delta.role;
      text += ch.delta.content ?? '';
      if (ch.finish_reason) finish = ch.finish_reason;
    }
    assert.equal(role, 'assistant');
    assert.equal(text, REPLY);
    assert.equal(finish, 'stop');
    assert.ok(chunks > 5, 'streamed in pieces');
    assert.equal(usage?.completion_tokens, llama().encode(REPLY, { addSpecialTokens: false }).length + 1);
    assert.equal(usage?.prompt_tokens, lastReq().promptIds.length);
  });

  it('max_tokens cuts the text with finish_reason length', async () => {
    const r = await oa.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'Hi' }], max_tokens: 5 });
    const ids = llama().encode(REPLY, { addSpecialTokens: false }).slice(0, 5);
    assert.equal(r.choices[0]!.message.content, llama().decode(ids));
    assert.equal(r.choices[0]!.finish_reason, 'length');
    assert.equal(r.usage?.completion_tokens, 5);
    assert.equal(lastReq().maxTokens, 5);
  });

  it('stop strings end the text before them, streamed or not, and cancel the engine request', async () => {
    for (const stop of ['friend', ['xyz', 'are you']] as const) {
      const first = typeof stop === 'string' ? stop : stop[1];
      const want = REPLY.slice(0, REPLY.indexOf(first));
      const r = await oa.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'Hi' }], stop: [...[stop].flat()] });
      assert.equal(r.choices[0]!.message.content, want);
      assert.equal(r.choices[0]!.finish_reason, 'stop');
      assert.ok(s.engine.aborted.includes(lastReq().id), 'engine told to stop generating');
      const stream = await oa.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'Hi' }], stop: [...[stop].flat()], stream: true });
      let text = '';
      let finish: string | null = null;
      for await (const c of stream) {
        text += c.choices[0]?.delta.content ?? '';
        finish = c.choices[0]?.finish_reason ?? finish;
        assert.ok(want.startsWith(text), `streamed ${JSON.stringify(text)} goes past the stop`);
      }
      assert.equal(text, want);
      assert.equal(finish, 'stop');
    }
  });

  it('n=2: two engine requests with their own ids and seeds, choices indexed, prompt billed once', async () => {
    const before = s.engine.submitted.length;
    const r = await oa.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'say: twice' }], n: 2, seed: 77 });
    const reqs = s.engine.submitted.slice(before);
    assert.equal(reqs.length, 2);
    assert.notEqual(reqs[0]!.id, reqs[1]!.id);
    assert.deepEqual(reqs.map((q) => q.sampling.seed).sort(), [77, 78]);
    assert.deepEqual(r.choices.map((c) => c.index), [0, 1]);
    for (const c of r.choices) assert.equal(c.message.content, ' twice');
    const each = llama().encode(' twice', { addSpecialTokens: false }).length + 1;
    assert.equal(r.usage?.completion_tokens, 2 * each);
    assert.equal(r.usage?.prompt_tokens, reqs[0]!.promptIds.length);
    // Same seed, same request → the same seeds reach the engine (reproducible).
    await oa.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'say: twice' }], n: 2, seed: 77 });
    assert.deepEqual(s.engine.submitted.slice(-2).map((q) => q.sampling.seed).sort(), [77, 78]);
  });

  it('n=2 streamed: chunks carry both indexes', async () => {
    const stream = await oa.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'say: both of us' }], n: 2, stream: true });
    const texts = ['', ''];
    const finishes: (string | null)[] = [null, null];
    for await (const c of stream) {
      for (const ch of c.choices) {
        texts[ch.index] += ch.delta.content ?? '';
        if (ch.finish_reason) finishes[ch.index] = ch.finish_reason;
      }
    }
    assert.deepEqual(texts, [' both of us', ' both of us']);
    assert.deepEqual(finishes, ['stop', 'stop']);
  });

  it('passes every sampling field through to the engine', async () => {
    await oa.chat.completions.create({
      model: 'm',
      messages: [{ role: 'user', content: 'Hi' }],
      temperature: 0,
      top_p: 0.5,
      presence_penalty: 0.5,
      frequency_penalty: -0.5,
      logit_bias: { '5': 2.5, '17': -100 },
      seed: 1234,
      max_completion_tokens: 9,
      ...extra({ top_k: 7, min_p: 0.1, repetition_penalty: 1.2, ignore_eos: true }),
    });
    const q = lastReq();
    assert.equal(q.sampling.temperature, 0);
    assert.equal(q.sampling.topP, 0.5);
    assert.equal(q.sampling.topK, 7);
    assert.equal(q.sampling.minP, 0.1);
    assert.equal(q.sampling.repetitionPenalty, 1.2);
    assert.equal(q.sampling.presencePenalty, 0.5);
    assert.equal(q.sampling.frequencyPenalty, -0.5);
    assert.deepEqual([...q.sampling.logitBias], [[5, 2.5], [17, -100]]);
    assert.equal(q.sampling.seed, 1234);
    assert.equal(q.maxTokens, 9);
    assert.deepEqual(q.stopIds, [], 'ignore_eos');
  });

  it('chat logprobs: token strings, logprobs and top_logprobs, streamed and not', async () => {
    const r = await oa.chat.completions.create({
      model: 'm', messages: [{ role: 'user', content: 'say: abc def' }], logprobs: true, top_logprobs: 2,
    });
    const ids = [...llama().encode(' abc def', { addSpecialTokens: false }), llama().eosIds[0]!];
    assert.equal(lastReq().sampling.logprobs, 2);
    const content = r.choices[0]!.logprobs!.content!;
    assert.equal(content.length, ids.length);
    content.forEach((t, k) => {
      const want = fakeLogprob(ids[k]!, k, 2, 384);
      assert.equal(t.token, llama().decode([ids[k]!]));
      assert.equal(t.logprob, want.logprob);
      assert.deepEqual(t.top_logprobs.map((a) => a.token), want.top!.map((a) => llama().decode([a.token])));
      assert.deepEqual(t.top_logprobs.map((a) => a.logprob), want.top!.map((a) => a.logprob));
      assert.deepEqual(t.bytes, [...Buffer.from(t.token)]);
    });
    const stream = await oa.chat.completions.create({
      model: 'm', messages: [{ role: 'user', content: 'say: abc def' }], logprobs: true, stream: true,
    });
    const streamed: number[] = [];
    for await (const c of stream) {
      for (const t of c.choices[0]?.logprobs?.content ?? []) {
        streamed.push(t.logprob);
        assert.deepEqual(t.top_logprobs, [], 'top_logprobs not asked for');
      }
    }
    assert.deepEqual(streamed, ids.map((_, k) => -(k + 1) / 8));
  });

  it('completions: string prompt, token-id prompt, two prompts × n=2, legacy logprobs', async () => {
    const r = await oa.completions.create({ model: 'm', prompt: 'Once upon a time', max_tokens: 4 });
    assert.equal(r.object, 'text_completion');
    assert.equal(r.choices[0]!.text, llama().decode(llama().encode(REPLY, { addSpecialTokens: false }).slice(0, 4)));
    assert.equal(r.choices[0]!.finish_reason, 'length');
    assert.deepEqual(lastReq().promptIds, llama().encode('Once upon a time'), 'raw prompt, with the BOS the tokenizer adds');

    const ids = llama().encode('say: tokens', { addSpecialTokens: false });
    const byIds = await oa.completions.create({ model: 'm', prompt: ids });
    assert.deepEqual(lastReq().promptIds, ids);
    assert.equal(byIds.choices[0]!.text, ' tokens');
    assert.equal(byIds.usage?.prompt_tokens, ids.length);

    const multi = await oa.completions.create({ model: 'm', prompt: ['say: one', 'say: two'], n: 2 });
    assert.deepEqual(multi.choices.map((c) => [c.index, c.text]), [[0, ' one'], [1, ' one'], [2, ' two'], [3, ' two']]);
    assert.equal(multi.usage?.prompt_tokens, llama().encode('say: one').length + llama().encode('say: two').length);

    const lp = await oa.completions.create({ model: 'm', prompt: 'say: xy zw', logprobs: 3 });
    const gen = [...llama().encode(' xy zw', { addSpecialTokens: false }), llama().eosIds[0]!];
    const l = lp.choices[0]!.logprobs!;
    assert.deepEqual(l.tokens, gen.map((id) => llama().decode([id])));
    assert.deepEqual(l.token_logprobs, gen.map((_, k) => -(k + 1) / 8));
    l.top_logprobs!.forEach((dict, k) => {
      const want = fakeLogprob(gen[k]!, k, 3, 384).top!;
      for (const a of want) assert.equal(dict[llama().decode([a.token])], a.logprob);
    });
    // Offsets of each token's text in the completion text.
    const text = lp.choices[0]!.text;
    l.text_offset!.forEach((off, k) => {
      if (k < gen.length - 1) assert.ok(text.startsWith(l.tokens![k]!, off), `token ${k} at ${off}`);
    });
  });

  it('completions streamed with stop and include_usage', async () => {
    const stream = await oa.completions.create({
      model: 'm', prompt: 'say: alpha beta gamma', stop: ' gam', stream: true, stream_options: { include_usage: true },
    });
    let text = '';
    let finish: string | null = null;
    let usage: OpenAI.CompletionUsage | undefined;
    for await (const c of stream) {
      if (c.usage) usage = c.usage;
      for (const ch of c.choices) {
        text += ch.text;
        finish = ch.finish_reason ?? finish;
      }
    }
    assert.equal(text, ' alpha beta');
    assert.equal(finish, 'stop');
    assert.equal(usage?.prompt_tokens, llama().encode('say: alpha beta gamma').length);
    // Completion tokens are those consumed up to and including the one that completed the stop string.
    assert.ok(usage!.completion_tokens >= llama().encode(' alpha beta', { addSpecialTokens: false }).length);
  });

  it('streams multi-byte characters whole, though the vocabulary splits them into byte tokens', async () => {
    const text = ' 日本語のテキスト 🐳🇯🇵 done';
    assert.ok(llama().encode(text, { addSpecialTokens: false }).length > [...text].length, 'characters span several tokens');
    const stream = await oa.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: `say:${text}` }], stream: true });
    let got = '';
    for await (const c of stream) {
      const piece = c.choices[0]?.delta.content ?? '';
      assert.ok(!piece.includes('\uFFFD'), `broken character in ${JSON.stringify(piece)}`);
      got += piece;
    }
    assert.equal(got, text);
  });

  it('GET /v1/models lists the served model', async () => {
    const models = await oa.models.list();
    assert.deepEqual(models.data.map((m) => m.id), ['tiny-llama']);
    assert.equal((await oa.models.retrieve('tiny-llama')).id, 'tiny-llama');
  });
});

describe('--force_think: reasoning_content apart from content', needFixtures, () => {
  let s: FakeServer;
  const THOUGHT = 'The user greets me. I should greet back';
  const ANSWER = 'Hello! Nice to meet you.';
  before(async () => {
    const qwen = fixtureTokenizer('qwen3');
    s = await startFakeServer(
      { script: () => qwen.encode(`${THOUGHT}</think>\n\n${ANSWER}`, { addSpecialTokens: false }) },
      { fixture: 'qwen3', forceThink: true },
    );
  });
  after(() => s.close());

  it('opens the assistant turn with <think> and splits the answer, streamed and not', async () => {
    const oa = client(s);
    const r = await oa.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'Hi' }] });
    const msg = r.choices[0]!.message as OpenAI.ChatCompletionMessage & { reasoning_content?: string; reasoning?: string };
    assert.equal(msg.content, ANSWER);
    assert.equal(msg.reasoning_content, THOUGHT);
    assert.equal(msg.reasoning, THOUGHT);
    const prompt = fixtureTokenizer('qwen3').decode(s.engine.submitted[0]!.promptIds);
    assert.equal(prompt, '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n');

    const stream = await oa.chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'Hi' }], stream: true });
    let content = '';
    let reasoning = '';
    for await (const c of stream) {
      const d = (c.choices[0]?.delta ?? {}) as { content?: string; reasoning_content?: string };
      content += d.content ?? '';
      reasoning += d.reasoning_content ?? '';
    }
    assert.equal(content, ANSWER);
    assert.equal(reasoning, THOUGHT);
  });

  it('a template that opens the think block itself gets the same split, without --force_think', async () => {
    const qwen = fixtureTokenizer('qwen3');
    const opening = new ChatTemplate(
      '{% for m in messages %}<|im_start|>{{ m.role }}\n{{ m.content }}<|im_end|>\n{% endfor %}<|im_start|>assistant\n<think>\n',
      {},
    );
    const t = await startFakeServer(
      { script: () => qwen.encode(`${THOUGHT}</think>\n\n${ANSWER}`, { addSpecialTokens: false }) },
      { fixture: 'qwen3', chatTemplate: opening },
    );
    try {
      const r = await client(t).chat.completions.create({ model: 'm', messages: [{ role: 'user', content: 'Hi' }] });
      const msg = r.choices[0]!.message as OpenAI.ChatCompletionMessage & { reasoning_content?: string };
      assert.equal(msg.content, ANSWER);
      assert.equal(msg.reasoning_content, THOUGHT);
    } finally {
      await t.close();
    }
  });
});
