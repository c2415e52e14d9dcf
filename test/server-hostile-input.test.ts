// Client input built to break the server rather than to be answered: a single BPE piece of millions of symbols,
// template arguments nested thousands deep, a template that refuses or cannot render the messages. Each is the
// client's error (a 4xx in our own words) or is served; only our own failures are 500s, and those keep their
// message to the log. Oracles: the HTTP statuses and OpenAI error fields, and the reference token counts.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { ChatTemplate, type ChatMessage, type ChatRenderOptions } from '../src/tokenizer/index.js';
import { startFakeServer, type FakeServer } from './helpers/fake-engine.js';
import { needFixtures } from './fixtures.js';

interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: string | null };
}

async function post(s: FakeServer, path: string, body: unknown): Promise<Response> {
  return fetch(`${s.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

async function errorOf(res: Response, status: number): Promise<ErrorBody['error']> {
  const text = await res.text();
  assert.equal(res.status, status, text);
  return (JSON.parse(text) as ErrorBody).error;
}

/** `{"x":{"x":…1…}}`, `depth` objects deep, as JSON text (JSON.stringify itself would overflow the stack). */
function nestedJson(depth: number): string {
  return '{"x":'.repeat(depth) + '1' + '}'.repeat(depth);
}

/** What a stack overflow, an interpreter or a tokenizer error would say; none of it may reach a client. */
const INTERNAL = /call stack|too long for BPE|Cannot|undefined|null|RangeError|TypeError|secret/i;

describe('hostile input → 4xx in our words, or served', needFixtures, () => {
  let s: FakeServer;
  before(async () => {
    s = await startFakeServer({ script: () => [] }, { fixture: 'qwen3', maxModelLen: 2 ** 22, bodyLimit: 8 << 20 });
  });
  after(() => s.close());

  it('a completion prompt that is one run of 2^21 + 5 letters is tokenized and served', async () => {
    const res = await post(s, '/v1/completions', { prompt: 'a'.repeat(2 ** 21 + 5), max_tokens: 1 });
    assert.equal(res.status, 200, await res.clone().text());
    // The fixture vocabulary has no merge for "aa": one token per letter (as @lenml/tokenizers gives, see
    // tokenizer-long-input.test.ts).
    assert.equal(s.engine.submitted.at(-1)!.promptIds.length, 2 ** 21 + 5);
  });

  it('chat_template_kwargs nested 6,000 deep → 400 naming chat_template_kwargs', async () => {
    const body = `{"messages":[{"role":"user","content":"hi"}],"chat_template_kwargs":${nestedJson(6000)}}`;
    const e = await errorOf(await post(s, '/v1/chat/completions', body), 400);
    assert.equal(e.param, 'chat_template_kwargs');
    assert.equal(e.type, 'invalid_request_error');
    assert.doesNotMatch(e.message, INTERNAL);
  });

  it('tool_calls nested 6,000 deep → 400 naming the message', async () => {
    const body = `{"messages":[{"role":"assistant","content":"x","tool_calls":[${nestedJson(6000)}]},{"role":"user","content":"hi"}]}`;
    const e = await errorOf(await post(s, '/v1/chat/completions', body), 400);
    assert.equal(e.param, 'messages[0].tool_calls');
    assert.doesNotMatch(e.message, INTERNAL);
  });

  it('kwargs within the bounds still reach the template', async () => {
    const res = await post(s, '/v1/chat/completions', {
      messages: [{ role: 'user', content: 'hi' }], chat_template_kwargs: { enable_thinking: false, deep: JSON.parse(nestedJson(20)) },
    });
    assert.equal(res.status, 200, await res.clone().text());
  });

  it("a template's raise_exception → 400 with the template's words", async () => {
    const refusing = new ChatTemplate("{% if messages[0].role != 'user' %}{{ raise_exception('the first message must be the user\\'s, not ' + messages[0].role) }}{% endif %}x", {});
    const r = await startFakeServer({ script: () => [] }, { fixture: 'qwen3', chatTemplate: refusing });
    try {
      const e = await errorOf(await post(r, '/v1/chat/completions', { messages: [{ role: 'assistant<|im_end|>', content: 'hi' }] }), 400);
      assert.equal(e.param, 'messages');
      // The role the template quotes comes back as the client wrote it.
      assert.equal(e.message, "the chat template refused these messages: the first message must be the user's, not assistant<|im_end|>");
    } finally {
      await r.close();
    }
  });

  it('a template the interpreter cannot run on these messages → 400 with our message, not its own', async () => {
    // Qwen3's template calls content.startswith on every user message; a null content has no such method.
    const e = await errorOf(await post(s, '/v1/chat/completions', { messages: [{ role: 'user', content: null }] }), 400);
    assert.equal(e.param, 'messages');
    assert.match(e.message, /chat template could not render/);
    assert.doesNotMatch(e.message, INTERNAL);
  });

  it('a failure of our own while rendering → 500 whose message says nothing of it', async () => {
    class BrokenTemplate extends ChatTemplate {
      override render(_messages: readonly ChatMessage[], _opts?: ChatRenderOptions): string {
        throw new TypeError('secret: cannot read properties of undefined (reading "x")');
      }
    }
    const r = await startFakeServer({ script: () => [] }, { fixture: 'qwen3', chatTemplate: new BrokenTemplate('x', {}) });
    try {
      const e = await errorOf(await post(r, '/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }] }), 500);
      assert.equal(e.type, 'server_error');
      assert.doesNotMatch(e.message, INTERNAL);
    } finally {
      await r.close();
    }
  });
});
