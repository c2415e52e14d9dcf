// The chat settings panel (system prompt and sampling), kept in localStorage so a reload keeps them. An empty
// field is left out of the request, so the server's default applies.

const STORE = 'ktserve.settings';
const FIELDS = ['system', 'temperature', 'top_p', 'max_tokens'];
const NUMBERS = new Set(['temperature', 'top_p', 'max_tokens']);

function input(name) {
  return document.getElementById(name);
}

function saved() {
  try {
    return JSON.parse(localStorage.getItem(STORE) ?? '{}') ?? {};
  } catch {
    return {};
  }
}

/** Fills the fields from storage and saves them on every change. */
export function bindSettings() {
  const values = saved();
  for (const name of FIELDS) {
    if (typeof values[name] === 'string') input(name).value = values[name];
    input(name).addEventListener('input', () => {
      const all = saved();
      all[name] = input(name).value;
      localStorage.setItem(STORE, JSON.stringify(all));
    });
  }
}

export function savedModel() {
  return saved().model;
}

export function saveModel(model) {
  localStorage.setItem(STORE, JSON.stringify({ ...saved(), model }));
}

/** The system prompt ('' for none). */
export function systemPrompt() {
  return input('system').value.trim();
}

/** Sampling fields for the request body; a field that is empty is not sent (a bad number is, for the server to refuse). */
export function samplingParams() {
  const out = {};
  for (const name of NUMBERS) {
    const raw = input(name).value.trim();
    if (raw !== '') out[name] = Number(raw);
  }
  return out;
}
