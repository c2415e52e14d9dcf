// Chat templates of the fixture models (the real families' templates): the refs.json `chat` prompt was made by
// Hugging Face's apply_chat_template for one user message with add_generation_prompt; we render the same.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { readGguf } from '../src/formats/gguf.js';
import { ChatTemplate, ChatTemplateError, loadTokenizerFromDir, type ChatMessage } from '../src/tokenizer/index.js';
import { fixturePath, needFixtures, readFixtureJson } from './fixtures.js';

interface Refs {
  prompts: Array<{ id: string; text: string; add_special_tokens: boolean; ids: number[] }>;
}

/** Each family's documented user-turn markers, to recover the question from the refs text. */
const FAMILIES = [
  { dir: 'llama', gguf: 'llama-f16.gguf', user: /<\|start_header_id\|>user<\|end_header_id\|>\n\n(.*?)<\|eot_id\|>/s,
    roles: ['<|start_header_id|>system<|end_header_id|>', '<|start_header_id|>user<|end_header_id|>', '<|start_header_id|>assistant<|end_header_id|>'],
    generation: '<|start_header_id|>assistant<|end_header_id|>\n\n' },
  { dir: 'qwen3', gguf: 'qwen3-f16.gguf', user: /<\|im_start\|>user\n(.*?)<\|im_end\|>/s,
    roles: ['<|im_start|>system\n', '<|im_start|>user\n', '<|im_start|>assistant\n'], generation: '<|im_start|>assistant\n' },
  { dir: 'deepseek', gguf: 'deepseek-f16.gguf', user: /<｜User｜>(.*?)<｜Assistant｜>/s,
    roles: ['<｜User｜>', '<｜Assistant｜>'], generation: '<｜Assistant｜>' },
];

const CONVERSATION: ChatMessage[] = [
  { role: 'system', content: 'You answer in one word.' },
  { role: 'user', content: 'Largest planet?' },
  { role: 'assistant', content: 'Jupiter.' },
];

describe('chat templates of the fixture models', needFixtures, () => {
  for (const f of FAMILIES) {
    const chat = readFixtureJson<Refs>(f.dir, 'refs.json').prompts.find((p) => p.id === 'chat')!;
    const question = f.user.exec(chat.text)?.[1];

    it(`${f.dir}: renders the refs chat prompt (tokenizer_config.json and GGUF), which encodes to its ids`, () => {
      assert.ok(question, 'the user message is recoverable from the refs text');
      const messages: ChatMessage[] = [{ role: 'user', content: question }];
      const fromConfig = ChatTemplate.fromTokenizerConfig(fixturePath(f.dir))!;
      const fromGguf = ChatTemplate.fromGguf(readGguf(fixturePath(f.dir, f.gguf)).metadata)!;
      assert.equal(fromConfig.render(messages, { addGenerationPrompt: true }), chat.text);
      assert.equal(fromGguf.render(messages, { addGenerationPrompt: true }), chat.text);
      // The rendered text carries its own BOS (where the family has one): encode it without special tokens.
      const tok = loadTokenizerFromDir(fixturePath(f.dir));
      assert.deepEqual(tok.encode(fromConfig.render(messages, { addGenerationPrompt: true }), { addSpecialTokens: false }), chat.ids);
    });

    it(`${f.dir}: a 3-message conversation has every turn in order, and the generation prompt when asked`, () => {
      const t = ChatTemplate.fromTokenizerConfig(fixturePath(f.dir))!;
      const text = t.render(CONVERSATION, { addGenerationPrompt: true });
      let at = 0;
      for (const m of CONVERSATION) {
        const next = text.indexOf(m.content!, at);
        assert.ok(next >= at, `${m.role} content in order`);
        at = next + m.content!.length;
      }
      for (const marker of f.roles) assert.ok(text.includes(marker), marker);
      assert.ok(text.endsWith(f.generation));
      // This Llama 3 template appends the assistant header always; the others only when asked.
      if (t.source.includes('add_generation_prompt')) {
        assert.ok(!t.render(CONVERSATION, { addGenerationPrompt: false }).endsWith(f.generation));
      }
    });
  }

  it('raise_exception throws a ChatTemplateError with the template message', () => {
    const t = new ChatTemplate("{% if messages[0]['role'] != 'user' %}{{ raise_exception('first message must be user') }}{% endif %}ok", {});
    assert.equal(t.render([{ role: 'user', content: 'x' }]), 'ok');
    assert.throws(() => t.render([{ role: 'assistant', content: 'x' }]), (e: unknown) => e instanceof ChatTemplateError && e.message === 'first message must be user');
  });

  it('strftime_now formats the current date as Python does (English names, zero padding)', () => {
    const t = new ChatTemplate("{{ strftime_now('%d %b %Y') }}|{{ strftime_now('%Y-%m-%d') }}", {});
    const [human, iso] = t.render([]).split('|');
    const now = new Date();
    const pad = (n: number): string => String(n).padStart(2, '0');
    const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
    assert.equal(human, `${pad(now.getDate())} ${months[now.getMonth()]} ${now.getFullYear()}`);
    assert.equal(iso, `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}`);
  });

  it('extra variables and tools reach the template; bos_token comes from the specials', () => {
    const t = new ChatTemplate('{{ bos_token }}{% if tools %}{{ tools | length }} tools {% endif %}{% if enable_thinking is false %}no-think{% endif %}', { bos_token: '<s>' });
    assert.equal(t.render([], { tools: [{ type: 'function' }], extra: { enable_thinking: false } }), '<s>1 tools no-think');
  });

  it('a template that does not parse is a ChatTemplateError', () => {
    assert.throws(() => new ChatTemplate('{% if %}', {}), ChatTemplateError);
  });
});
