// The chat page's wiring: models, the composer (send / stop), the conversation sent with each request, the
// API-key dialog, and the settings and server panels.
import { ApiError, apiFetch, apiKey, onKeyNeeded, setApiKey } from './api.js';
import { streamChat } from './chat.js';
import { startMetricsPanel } from './metrics.js';
import { bindSettings, samplingParams, saveModel, savedModel, systemPrompt } from './settings.js';
import { Transcript } from './transcript.js';

const $ = (id) => document.getElementById(id);
const transcript = new Transcript($('messages'), document.querySelector('.chat .scroll'));
/** The turns sent with the next request: { role, content } (reasoning is not sent back, as OpenAI advises). */
let history = [];
/** The request in flight, if any. */
let inFlight;

function setBusy(busy) {
  $('send').hidden = busy;
  $('stop').hidden = !busy;
  $('composer').dataset.busy = String(busy);
}

function describe(r) {
  const parts = [];
  if (r.usage?.completion_tokens !== undefined) parts.push(`${r.usage.completion_tokens} tokens`);
  if (r.tokensPerSecond !== undefined) parts.push(`${r.tokensPerSecond.toFixed(1)} tok/s`);
  if (r.firstTokenMs !== undefined) parts.push(`first token ${Math.round(r.firstTokenMs)} ms`);
  if (r.finishReason === 'length') parts.push('cut at max tokens');
  return parts.join(' · ');
}

async function send() {
  const text = $('input').value.trim();
  if (!text || inFlight) return;
  $('input').value = '';
  $('empty').hidden = true;
  transcript.addUser(text);
  // This turn's conversation: "New chat" meanwhile starts another, which what arrives here must not join.
  const turns = history;
  turns.push({ role: 'user', content: text });
  const view = transcript.addAssistant();
  const controller = new AbortController();
  inFlight = controller;
  setBusy(true);
  const system = systemPrompt();
  const messages = system ? [{ role: 'system', content: system }, ...turns] : [...turns];
  let content = '';
  try {
    const r = await streamChat(
      { model: $('model').value || undefined, messages, ...samplingParams() },
      {
        signal: controller.signal,
        onDelta(d) {
          if (d.reasoning) view.appendReasoning(d.reasoning);
          if (d.content) view.appendContent(d.content);
          content += d.content;
        },
      },
    );
    turns.push({ role: 'assistant', content: r.content });
    view.finish('done', describe(r));
  } catch (e) {
    if (e.name === 'AbortError') {
      // What arrived stays part of the conversation, as the user saw it; an answer that never began, doesn't.
      if (content) turns.push({ role: 'assistant', content });
      else turns.pop();
      view.finish('stopped', 'stopped');
    } else {
      // The turn never happened: drop it from what is sent next, and give the text back for another try.
      turns.pop();
      view.fail(e instanceof ApiError ? e.message : `Request failed: ${e.message}`);
      if (!$('input').value) $('input').value = text;
    }
  } finally {
    inFlight = undefined;
    setBusy(false);
    $('input').focus();
  }
}

async function loadModels() {
  const select = $('model');
  try {
    const list = await (await apiFetch('/v1/models')).json();
    const ids = (list.data ?? []).map((m) => m.id);
    select.replaceChildren(...ids.map((id) => new Option(id, id)));
    const want = savedModel();
    if (ids.includes(want)) select.value = want;
  } catch (e) {
    transcript.addNotice(`Could not list models: ${e.message}`);
  }
}

/** The dialog shown on a 401: resolves to the key entered, or undefined on cancel. */
function askForKey(reason) {
  const dialog = $('key-dialog');
  $('key-reason').textContent = reason;
  $('key-input').value = '';
  dialog.showModal();
  return new Promise((resolve) => {
    const done = (key) => {
      $('key-form').removeEventListener('submit', onSubmit);
      dialog.removeEventListener('cancel', onCancel);
      $('key-cancel').removeEventListener('click', onCancel);
      dialog.close();
      if (key !== undefined) $('api-key').value = key;
      resolve(key);
    };
    const onSubmit = (ev) => {
      ev.preventDefault();
      const key = $('key-input').value.trim();
      if (key) done(key);
    };
    const onCancel = (ev) => {
      ev.preventDefault();
      done(undefined);
    };
    $('key-form').addEventListener('submit', onSubmit);
    dialog.addEventListener('cancel', onCancel);
    $('key-cancel').addEventListener('click', onCancel);
  });
}

function bind() {
  bindSettings();
  onKeyNeeded(askForKey);
  $('api-key').value = apiKey();
  $('api-key').addEventListener('change', () => {
    setApiKey($('api-key').value.trim());
    void loadModels();
  });
  $('model').addEventListener('change', () => saveModel($('model').value));
  $('composer').addEventListener('submit', (ev) => {
    ev.preventDefault();
    void send();
  });
  $('input').addEventListener('keydown', (ev) => {
    if (ev.key === 'Enter' && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      void send();
    }
  });
  $('stop').addEventListener('click', () => inFlight?.abort());
  document.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape' && inFlight && !$('key-dialog').open) inFlight.abort();
  });
  $('new-chat').addEventListener('click', () => {
    inFlight?.abort();
    history = [];
    transcript.clear();
    $('empty').hidden = false;
    $('input').focus();
  });
  $('toggle-side').addEventListener('click', () => {
    const open = document.body.classList.toggle('side-closed') === false;
    $('toggle-side').setAttribute('aria-expanded', String(open));
  });
}

bind();
startMetricsPanel();
void loadModels();
