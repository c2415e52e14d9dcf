// The web chat UI in a real browser (the system's headless Chromium): a message streams in piece by piece and
// ends as the engine's text; reasoning shows apart; Stop aborts the engine's request; errors reach the page; the
// server panel shows numbers; a 401 asks for the key, which then works. Leaves screenshots to look at
// ($KT_WEB_UI_SCREENSHOT, default <tmpdir>/ktserve-web-ui.png, and …-streaming.png beside it).
import assert from 'node:assert/strict';
import { sample, scrape } from '../bench/prom-text.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, Page } from 'playwright-core';
import type { GenerationRequest } from '../src/engine/engine-api.js';
import { launchChromium, needChromium } from './helpers/browser.js';
import { fixtureTokenizer, startFakeServer, type FakeServer } from './helpers/fake-engine.js';
import { needFixtures } from './fixtures.js';

const SCREENSHOT = process.env['KT_WEB_UI_SCREENSHOT'] ?? join(tmpdir(), 'ktserve-web-ui.png');
const ANSWER = 'Paged attention keeps the KV cache in fixed-size blocks, so sequences of any length share one pool.';
const THOUGHT = 'The user asks about batching. Continuous batching admits new requests between steps';
const REASONED = 'Continuous batching lets new requests join at every step instead of waiting for a whole batch.';
const KEY = 'sekret-key-1';

/** Room for the long answer the stop test interrupts, and for a second turn's prompt. */
const LIMITS = { maxNewTokens: 1024, maxModelLen: 8192 };

/** The newest user turn of a request's prompt (the llama fixture's chat template marks each turn). */
function lastUserTurn(req: GenerationRequest): string {
  const prompt = fixtureTokenizer('llama').decode(req.promptIds);
  return prompt.slice(prompt.lastIndexOf('<|start_header_id|>user'));
}

/** What the fake engine generates, chosen by the user's newest words: a long answer to stop, or ANSWER. */
function scriptFor(req: GenerationRequest): number[] {
  const answer = fixtureTokenizer('llama').encode(ANSWER, { addSpecialTokens: false });
  if (lastUserTurn(req).includes('long story')) return Array.from({ length: 40 }, () => answer).flat();
  return answer;
}

interface PageErrors {
  list: string[];
}

/** A fresh page (own storage) that records script errors and CSP refusals; resources answered 4xx are expected. */
async function openPage(browser: Browser, url: string): Promise<{ page: Page; errors: PageErrors }> {
  const context = await browser.newContext({ viewport: { width: 1200, height: 760 } });
  const page = await context.newPage();
  const errors: PageErrors = { list: [] };
  page.on('pageerror', (e) => errors.list.push(`pageerror: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) errors.list.push(`console: ${m.text()}`);
  });
  await page.goto(url);
  return { page, errors };
}

/** Types a message and sends it with Enter, as a user does. */
async function say(page: Page, text: string): Promise<void> {
  await page.fill('#input', text);
  await page.press('#input', 'Enter');
}

const lastAssistant = '.msg.assistant >> nth=-1';

/** Waits for the newest assistant turn to leave the streaming state; returns that state. */
async function settled(page: Page): Promise<string> {
  await page.waitForSelector(`.msg.assistant:last-child:not([data-state="streaming"])`);
  return (await page.getAttribute(lastAssistant, 'data-state')) ?? '';
}

/** Records every text the newest assistant turn's answer shows, from now on (a MutationObserver in the page). */
async function recordAnswerTexts(page: Page): Promise<void> {
  // Strings, not functions: the tests compile without the DOM's types.
  await page.evaluate(`(() => {
    window.answerTexts = [];
    new MutationObserver(() => {
      const t = document.querySelector('.msg.assistant:last-child .content')?.textContent ?? '';
      if (t !== '' && window.answerTexts.at(-1) !== t) window.answerTexts.push(t);
    }).observe(document.getElementById('messages'), { subtree: true, childList: true, characterData: true });
  })()`);
}

/** Polls `read` until `ok` holds of what it returns (default 5 s); returns that. Polled from here, not in the
 * page: the page's CSP refuses the eval that a string condition in waitForFunction would need. */
async function until<T>(read: () => Promise<T>, ok: (v: T) => boolean, what: string, timeout = 5000): Promise<T> {
  const end = Date.now() + timeout;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > end) assert.fail(`timed out waiting for ${what} (last: ${JSON.stringify(v)})`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Waits until the element's text matches `re`; returns the text. */
async function waitForText(page: Page, selector: string, re: RegExp, timeout = 5000): Promise<string> {
  return until(async () => (await page.textContent(selector)) ?? '', (t) => re.test(t), `${selector} to match ${re}`, timeout);
}

/** Waits until the model list has loaded and the named model is chosen. */
async function modelChosen(page: Page, model: string): Promise<void> {
  await until(() => page.inputValue('#model'), (v) => v === model, `model ${model} chosen`);
}

/** Waits until the server panel has read /metrics. */
async function panelLive(page: Page): Promise<void> {
  await page.waitForSelector('#metrics-state[data-state="live"]', { timeout: 5000 });
}

async function metricValue(url: string, name: string): Promise<number> {
  return sample(await scrape(url), name);
}

describe('web chat UI in headless Chromium', { ...needFixtures, ...needChromium }, () => {
  let browser: Browser;
  let plain: FakeServer;
  let thinking: FakeServer;
  let keyed: FakeServer;
  before(async () => {
    const qwen = fixtureTokenizer('qwen3');
    [browser, plain, thinking, keyed] = await Promise.all([
      launchChromium(),
      startFakeServer({
        script: scriptFor,
        stepMs: 12,
        failAfter: (req) => (lastUserTurn(req).includes('break') ? { tokens: 3, message: 'fake engine failure' } : undefined),
      }, LIMITS),
      startFakeServer(
        { script: () => qwen.encode(`${THOUGHT}</think>\n\n${REASONED}`, { addSpecialTokens: false }), stepMs: 10 },
        { fixture: 'qwen3', forceThink: true, ...LIMITS },
      ),
      startFakeServer({ script: scriptFor, stepMs: 2 }, { apiKey: KEY, ...LIMITS }),
    ]);
  });
  after(async () => {
    await browser?.close();
    await Promise.all([plain?.close(), thinking?.close(), keyed?.close()]);
  });

  it('streams the answer in piece by piece, ending as the engine’s text, with the settings sent', async () => {
    const { page, errors } = await openPage(browser, `${plain.url}/`);
    await modelChosen(page, 'tiny-llama');
    await page.fill('#system', 'Answer in one sentence.');
    await page.fill('#temperature', '0.3');
    await page.fill('#max_tokens', '200');
    await recordAnswerTexts(page);
    await say(page, 'What is paged attention?');
    assert.equal(await settled(page), 'done');
    const shown = await page.textContent(`${lastAssistant} >> .content`);
    // The oracle: the same conversation asked of the API directly.
    const direct = (await (
      await fetch(`${plain.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ messages: [{ role: 'user', content: 'What is paged attention?' }] }),
      })
    ).json()) as { choices: { message: { content: string } }[] };
    assert.equal(shown, direct.choices[0]!.message.content);
    assert.equal(shown, ANSWER);
    const texts = (await page.evaluate('window.answerTexts')) as string[];
    assert.ok(texts.length >= 5, `the answer arrived in ${texts.length} pieces`);
    for (const t of texts) assert.ok(ANSWER.startsWith(t), `${JSON.stringify(t)} is a prefix of the answer`);
    assert.match((await page.textContent(`${lastAssistant} >> .meta`)) ?? '', /\d+ tokens/);

    const req = plain.engine.submitted.at(-2)!; // the page's request, before the oracle's
    assert.equal(req.sampling.temperature, 0.3);
    assert.equal(req.maxTokens, 200);
    assert.match(fixtureTokenizer('llama').decode(req.promptIds), /Answer in one sentence\.[\s\S]*What is paged attention\?/);

    // The second turn carries the first: the conversation goes back to the server whole.
    await say(page, 'And why blocks?');
    assert.equal(await settled(page), 'done');
    const second = fixtureTokenizer('llama').decode(plain.engine.submitted.at(-1)!.promptIds);
    assert.ok(second.includes(ANSWER) && second.includes('And why blocks?'), second);
    assert.deepEqual(errors.list, []);
  });

  it('Stop aborts the request: the engine sees the abort and nothing is left running', async () => {
    const { page, errors } = await openPage(browser, `${plain.url}/`);
    await say(page, 'Tell me a long story.');
    await waitForText(page, '.msg.assistant .content', /.{20}/);
    // The server panel sees the request running.
    await waitForText(page, '#m-running', /^1$/);
    assert.equal(await page.isVisible('#send'), false);
    await page.screenshot({ path: SCREENSHOT.replace(/(\.png)?$/, '-streaming.png') });
    await page.click('#stop');
    assert.equal(await settled(page), 'stopped');
    const id = plain.engine.submitted.at(-1)!.id;
    await until(async () => plain.engine.aborted.includes(id), (v) => v, 'the engine to be asked to abort the request');
    assert.equal(plain.engine.finished.get(id)?.reason, 'abort');
    assert.equal(await metricValue(plain.url, 'ktserve_num_requests_running'), 0);
    await waitForText(page, '#m-running', /^0$/);
    assert.equal(await page.isVisible('#send'), true);
    const partial = (await page.textContent(`${lastAssistant} >> .content`)) ?? '';
    assert.ok(partial.length > 0 && partial.length < 40 * ANSWER.length);
    // The part that arrived is the assistant's turn in what the next request sends (the template trims turns).
    await say(page, 'Thanks.');
    assert.equal(await settled(page), 'done');
    const next = fixtureTokenizer('llama').decode(plain.engine.submitted.at(-1)!.promptIds);
    assert.ok(next.includes(partial.trim()), `${JSON.stringify(partial)} not in ${JSON.stringify(next)}`);
    assert.deepEqual(errors.list, []);
  });

  it('shows the server’s refusal and a failure mid-stream in the chat', async () => {
    const { page, errors } = await openPage(browser, `${plain.url}/`);
    await page.fill('#temperature', '5');
    await say(page, 'Hello');
    assert.equal(await settled(page), 'error');
    const refusal = (await (
      await fetch(`${plain.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ messages: [{ role: 'user', content: 'Hello' }], temperature: 5, stream: true }),
      })
    ).json()) as { error: { message: string } };
    assert.equal(await page.textContent(`${lastAssistant} >> .error`), refusal.error.message);
    assert.equal(await page.inputValue('#input'), 'Hello', 'the text comes back for another try');

    await page.fill('#temperature', '');
    await say(page, 'Please break.');
    assert.equal(await settled(page), 'error');
    assert.equal(await page.textContent(`${lastAssistant} >> .error`), 'fake engine failure');
    assert.deepEqual(errors.list, []);
  });

  it('shows live numbers in the server panel', async () => {
    const { page, errors } = await openPage(browser, `${plain.url}/`);
    await panelLive(page);
    assert.match((await page.textContent('#m-running')) ?? '', /^\d+$/);
    assert.match((await page.textContent('#m-waiting')) ?? '', /^\d+$/);
    assert.match((await page.textContent('#m-kv')) ?? '', /^\d+\.\d %$/);
    await say(page, 'What is paged attention?');
    assert.equal(await settled(page), 'done');
    // A rate needs two scrapes; the one after this answer counts its tokens.
    await waitForText(page, '#m-tps', /^\d+\.\d$/, 6000);
    assert.deepEqual(errors.list, []);
  });

  it('shows a reasoning model’s thinking apart from its answer (and leaves a screenshot)', async () => {
    const { page, errors } = await openPage(browser, `${thinking.url}/`);
    await page.fill('#system', 'You are a concise assistant.');
    await say(page, 'What does continuous batching do?');
    assert.equal(await settled(page), 'done');
    assert.equal(await page.textContent(`${lastAssistant} >> .reasoning-text`), THOUGHT);
    assert.equal(await page.textContent(`${lastAssistant} >> .content`), REASONED);
    assert.equal(await page.textContent(`${lastAssistant} >> summary`), 'Reasoning');
    assert.equal(await page.getAttribute(`${lastAssistant} >> details`, 'open'), null, 'folded once the answer began');
    await page.click(`${lastAssistant} >> summary`);
    await panelLive(page);
    await waitForText(page, '#m-tps', /^\d+\.\d$/, 6000);
    await page.screenshot({ path: SCREENSHOT });
    assert.deepEqual(errors.list, []);
  });

  it('asks for the API key on a 401, keeps it, and works with it', async () => {
    const { page, errors } = await openPage(browser, `${keyed.url}/`);
    await page.waitForSelector('#key-dialog[open]');
    assert.match((await page.textContent('#key-reason')) ?? '', /Missing API key/);
    await page.fill('#key-input', 'wrong');
    await page.click('#key-ok');
    await waitForText(page, '#key-reason', /Incorrect API key/);
    assert.equal(await page.isVisible('#key-dialog'), true);
    await page.fill('#key-input', KEY);
    await page.click('#key-ok');
    await modelChosen(page, 'tiny-llama');
    assert.equal(await page.isVisible('#key-dialog'), false);
    await say(page, 'What is paged attention?');
    assert.equal(await settled(page), 'done');
    assert.equal(await page.textContent(`${lastAssistant} >> .content`), ANSWER);
    // Kept: a reload asks no more.
    await page.reload();
    await modelChosen(page, 'tiny-llama');
    assert.equal(await page.isVisible('#key-dialog'), false);
    assert.equal(await page.inputValue('#api-key'), KEY);
    assert.deepEqual(errors.list, []);
  });
});
