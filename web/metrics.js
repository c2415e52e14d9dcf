// The live server panel: polls /metrics (Prometheus text) and shows requests running and waiting, KV-cache use
// and generated tokens per second. Series are found by the end of their name and their labels ignored, so
// ktserve's own names (ktserve_num_requests_running) and vLLM-style ones (vllm:num_requests_running{model_name=…})
// both work; a name's samples are summed over its label sets (one per model).

/** name → sum of its samples' values. Comment lines, and samples that are not numbers, are skipped. */
export function parsePrometheus(text) {
  const sums = new Map();
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z_:][\w:]*)(\{(?:[^"}]|"(?:[^"\\]|\\.)*")*\})?\s+(\S+)/.exec(line.trim());
    if (!m) continue;
    const value = Number(m[3]);
    if (Number.isNaN(value)) continue;
    sums.set(m[1], (sums.get(m[1]) ?? 0) + value);
  }
  return sums;
}

/**
 * The first of `suffixes` (in order of preference) that ends some series' name at a `_` or `:` boundary, ktserve's
 * own series before others of the same suffix. Undefined when none is there.
 */
export function pick(sums, suffixes) {
  for (const suffix of suffixes) {
    const names = [...sums.keys()].filter((n) => n === suffix || n.endsWith(`_${suffix}`) || n.endsWith(`:${suffix}`));
    if (names.length === 0) continue;
    const name = names.find((n) => n.startsWith('ktserve_')) ?? names[0];
    return sums.get(name);
  }
  return undefined;
}

/** What the panel shows, from one scrape. `tokens` is a counter that moves with every generated token. */
export function readings(sums) {
  const used = pick(sums, ['kv_blocks_used']);
  const total = pick(sums, ['kv_blocks_total']);
  const ratio = pick(sums, ['kv_cache_usage_ratio', 'kv_cache_usage_perc', 'gpu_cache_usage_perc']) ?? (total > 0 ? used / total : undefined);
  // Histogram counts grow token by token while a request streams (the first token in TTFT, the others in the
  // inter-token series); generation_tokens_total, the fallback, may only grow when a request finishes.
  const first = pick(sums, ['time_to_first_token_seconds_count']);
  const later = pick(sums, ['inter_token_latency_seconds_count', 'time_per_output_token_seconds_count']);
  const tokens = first !== undefined && later !== undefined ? first + later : pick(sums, ['generation_tokens_total']);
  return {
    running: pick(sums, ['num_requests_running', 'requests_running']),
    waiting: pick(sums, ['num_requests_waiting', 'requests_waiting']),
    kvRatio: ratio,
    tokens,
  };
}

/** Polls every `intervalMs` and writes into the panel's elements (found by id) while the page is visible. */
export function startMetricsPanel({ intervalMs = 1500 } = {}) {
  const el = (id) => document.getElementById(id);
  let last; // { tokens, at } of the previous scrape, for the rate
  const show = (id, text) => {
    el(id).textContent = text;
  };
  async function poll() {
    try {
      const res = await fetch('/metrics', { headers: { accept: 'text/plain' }, cache: 'no-store' });
      if (!res.ok) throw new Error(`${res.status}`);
      const r = readings(parsePrometheus(await res.text()));
      const at = performance.now();
      show('m-running', r.running === undefined ? '–' : String(r.running));
      show('m-waiting', r.waiting === undefined ? '–' : String(r.waiting));
      show('m-kv', r.kvRatio === undefined ? '–' : `${(r.kvRatio * 100).toFixed(1)} %`);
      el('m-kv-bar').value = Math.min(1, Math.max(0, r.kvRatio ?? 0));
      if (r.tokens !== undefined && last !== undefined && at > last.at) {
        // A counter that went down means a restarted server: no rate for this interval.
        const rate = r.tokens >= last.tokens ? ((r.tokens - last.tokens) * 1000) / (at - last.at) : 0;
        show('m-tps', rate.toFixed(1));
      }
      last = r.tokens === undefined ? undefined : { tokens: r.tokens, at };
      el('metrics-state').textContent = 'live';
      el('metrics-state').dataset.state = 'live';
    } catch {
      last = undefined;
      el('metrics-state').textContent = 'unreachable';
      el('metrics-state').dataset.state = 'down';
    }
  }
  async function loop() {
    if (document.visibilityState !== 'hidden') await poll();
    setTimeout(loop, intervalMs);
  }
  void loop();
}
