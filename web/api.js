// Calls to this server's API: the API key (kept in localStorage) as a Bearer header, JSON bodies, and a 401
// answered by asking the user for a key (through the function given to onKeyNeeded) and trying once more.

const KEY_STORE = 'ktserve.apiKey';

let askForKey = async () => undefined;

/** `ask(message)` resolves to the key the user entered, or undefined if they declined. */
export function onKeyNeeded(ask) {
  askForKey = ask;
}

export function apiKey() {
  return localStorage.getItem(KEY_STORE) ?? '';
}

export function setApiKey(key) {
  if (key) localStorage.setItem(KEY_STORE, key);
  else localStorage.removeItem(KEY_STORE);
}

/** A failed call, with the message the server gave (OpenAI's error shape) when it gave one. */
export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
  }
}

/** fetch with the key; `json` becomes the body. Resolves only to an ok response, else throws an ApiError. */
export async function apiFetch(path, { json, signal } = {}) {
  for (let attempt = 0; ; attempt++) {
    const headers = { accept: json ? 'text/event-stream, application/json' : 'application/json' };
    const key = apiKey();
    if (key) headers.authorization = `Bearer ${key}`;
    if (json !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(path, {
      method: json === undefined ? 'GET' : 'POST',
      headers,
      body: json === undefined ? undefined : JSON.stringify(json),
      signal,
    });
    if (res.ok) return res;
    const message = await errorMessage(res);
    if (res.status === 401 && attempt < 3) {
      const entered = await askForKey(message);
      if (entered !== undefined) {
        setApiKey(entered);
        continue;
      }
    }
    throw new ApiError(res.status, message);
  }
}

/** The message of an error response: OpenAI's `{error: {message}}`, Ollama's `{error}`, or the status line. */
export async function errorMessage(res) {
  const text = await res.text().catch(() => '');
  return messageOf(text) ?? `${res.status} ${res.statusText || 'error'}${text ? `: ${text.slice(0, 200)}` : ''}`;
}

/** The message of an error body or event (`{error: …}`), or undefined when it is not one. */
export function messageOf(text) {
  try {
    const err = JSON.parse(text)?.error;
    if (typeof err === 'string') return err;
    if (typeof err?.message === 'string') return err.message;
  } catch {
    // not JSON
  }
  return undefined;
}
