// KTransformers' flags as its command lines write them (issue 13 #6), with the same meaning; those this build
// cannot honour refused by name with the reason; `--config file.yaml` (vLLM/SGLang style) under the same checks,
// overridden by the command line; --temperature/--top_p as the server's sampling defaults.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { UsageError, parseFlags } from '../src/cli/args.js';
import { serveFlags } from '../src/cli/flag-tables.js';
import { LoadingEngine } from '../src/engine/loading-engine.js';
import { FakeEngine, startFakeServer, startServerOver } from './helpers/fake-engine.js';
import { startKtserve } from '../bench/ktserve-process.js';
import { needFixtures } from './fixtures.js';

const parse = (...argv: string[]) => parseFlags(argv, serveFlags);
const refused = (argv: string[], pattern: RegExp) =>
  assert.throws(() => parseFlags(argv, serveFlags), (e: unknown) => e instanceof UsageError && pattern.test(e.message), argv.join(' '));
const tmp = mkdtempSync(join(tmpdir(), 'ktserve-flags-'));
function yamlFile(name: string, text: string): string {
  const path = join(tmp, name);
  writeFileSync(path, text);
  return path;
}

describe("KTransformers' serve flags", () => {
  it('a real KTransformers command line parses, each flag meaning what it means there', () => {
    // As KTransformers' own docs and users write it (argparse: `--web True`, BooleanOptionalAction for the rest).
    const f = parse(
      '--model_dir', '/m', '--gguf_path', '/g', '--model_name', 'DeepSeek-R1', '--cpu_infer', '28', '--max_new_tokens', '16384',
      '--cache_lens', '64768', '--temperature', '0.6', '--top_p', '0.95', '--force_think', '--use_cuda_graph', '--host', '::',
      '--port', '8070', '--web', 'True', '--max_batch_size', '4', '--backend_type', 'balance_serve', '--chunk_size', '256',
      '--page_size', '64', '--log_level', 'debug',
    );
    assert.equal(f.model_path, '/m'); // --model_dir is KTransformers' other name for it
    assert.equal(f.served_model_name, 'DeepSeek-R1');
    assert.equal(f.cpu_infer, 28);
    assert.equal(f.temperature, 0.6);
    assert.equal(f.top_p, 0.95);
    assert.equal(f.force_think, true);
    assert.equal(f.use_cuda_graph, true);
    assert.equal(f.web, true);
    assert.equal(f.host, '::');
    assert.equal(f.block_size, 64);
    assert.equal(f.log_level, 'debug');
    assert.equal(f.log_format, 'text');
  });

  it('defaults: CUDA graphs on, web on (as llama-server), log level info; --no-web, --no-use_cuda_graph, --no_cuda_graph and --no-force_think turn off', () => {
    const d = parse('--demo');
    assert.equal(d.use_cuda_graph, true);
    assert.equal(d.web, true);
    assert.equal(parse('--no-web').web, false);
    assert.equal(d.log_level, 'info');
    assert.equal(d.cpu_infer, undefined);
    assert.equal(parse('--no-use_cuda_graph').use_cuda_graph, false);
    assert.equal(parse('--no_cuda_graph').use_cuda_graph, false);
    assert.equal(parse('--force_think', '--no-force_think').force_think, false);
    assert.equal(parse('--log_format', 'json').log_format, 'json');
    refused(['--log_level', 'loud'], /--log_level must be one of fatal, error, warn, info, debug, trace, silent, crit/);
    refused(['--cpu_infer', '0'], /--cpu_infer must be between 1 and 4096/);
    refused(['--temperature', '-1'], /--temperature must be between 0 and 2/);
  });

  it('flags this build cannot honour are refused by name with the reason; a false bool is taken', () => {
    refused(['--cache_q4', 'true'], /^--cache_q4: a 4-bit KV cache is not implemented/);
    refused(['--cache_q4'], /^--cache_q4: /);
    assert.doesNotThrow(() => parse('--cache_q4', 'false')); // nothing asked that cannot be done
    refused(['--tp', '2'], /^--tp: .*one device/);
    refused(['--gpu_split', '20,20'], /^--gpu_split: /);
    refused(['--architectures', 'Qwen3MoeForCausalLM'], /^--architectures: .*config\.json or GGUF metadata/);
    refused(['--kvc2_config_dir', '/k'], /^--kvc2_config_dir: .*kvc2/);
    refused(['--cpu_memory_size_GB', '500'], /^--cpu_memory_size_GB: /);
    refused(['--ssl_keyfile', 'k.pem'], /^--ssl_keyfile: TLS is not served/);
    refused(['--draft_model_path', '/d'], /^--draft_model_path: speculative decoding/);
    // A flag of nobody's stays unknown, with a suggestion.
    refused(['--cache_lense', '1'], /unknown flag --cache_lense \(did you mean --cache_lens\?\)/);
  });
});

describe('--config file.yaml', () => {
  it('holds any flags, dashes or underscores, lists as comma lists; the command line overrides it', () => {
    const path = yamlFile('ok.yaml', 'model_path: /m\nmax-batch-size: 4\nport: 9000\nuse_cuda_graph: false\nno_prefix_cache: true\nallowed_origins: [http://a.test, http://b.test]\n');
    const f = parse('--config', path, '--port', '9001');
    assert.equal(f.model_path, '/m');
    assert.equal(f.max_batch_size, 4);
    assert.equal(f.port, 9001);
    assert.equal(f.use_cuda_graph, false);
    assert.equal(f.prefix_cache, false);
    assert.equal(f.allowed_origins, 'http://a.test,http://b.test');
    assert.equal(parse(`--config=${path}`, '--use_cuda_graph').use_cuda_graph, true);
    assert.equal(parse('--config', yamlFile('empty.yaml', '')).port, 10002);
  });

  it('gets the command line’s checks, its errors naming the file', () => {
    const f = (text: string) => ['--config', yamlFile('bad.yaml', text)];
    refused(f('port: 70000\n'), /^--config .*bad\.yaml: --port must be between 0 and 65535, got 70000/);
    refused(f('prot: 1\n'), /bad\.yaml: unknown flag --prot \(did you mean --port\?\)/);
    refused(f('cache_q4: true\n'), /bad\.yaml: --cache_q4: a 4-bit KV cache/);
    refused(f('port: {a: 1}\n'), /bad\.yaml: port has a nested mapping/);
    refused(f('port:\n'), /bad\.yaml: port has no value/);
    refused(f('- port\n'), /bad\.yaml: expected a mapping/);
    refused(f('port: [1\n'), /bad\.yaml: not valid YAML/);
    refused(f('config: other.yaml\n'), /cannot name another/);
    refused(['--config', join(tmp, 'missing.yaml')], /missing\.yaml: ENOENT/);
    refused(['--config', yamlFile('a.yaml', ''), '--config', yamlFile('b.yaml', '')], /--config given twice/);
  });

  it('serve reads it end to end (the served name, the batch size), the command line winning', async () => {
    const path = yamlFile('serve.yaml', 'demo: true\nmodel_name: from-file\nmax-batch-size: 3\nport: 1\n');
    // startKtserve adds --port 0 after the flags given: the command line's port wins over the file's 1.
    const server = await startKtserve(['--config', path]);
    try {
      assert.match(server.stderr(), /max_batch_size 3/);
      const models = (await (await fetch(`${server.url}/v1/models`)).json()) as { data: { id: string }[] };
      assert.equal(models.data[0]!.id, 'from-file');
    } finally {
      assert.equal((await server.stop()).code, 0);
    }
  });
});

describe('--temperature and --top_p: sampling defaults of the server', needFixtures, () => {
  const chat = (url: string, extra: object) =>
    fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ role: 'user', content: 'hi' }], max_tokens: 2, ...extra }),
    });
  const ollama = (url: string, options: object) =>
    fetch(`${url}/api/chat`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'hi' }], stream: false, options: { num_predict: 2, ...options } }),
    });

  it('apply where a request sets none, on both APIs; a request’s own value wins', async () => {
    const s = await startFakeServer({ script: () => [5, 6] }, { samplingDefaults: { temperature: 0.3, topP: 0.7 } });
    try {
      const last = () => s.engine.submitted.at(-1)!.sampling;
      assert.equal((await chat(s.url, {})).status, 200);
      assert.equal(last().temperature, 0.3);
      assert.equal(last().topP, 0.7);
      assert.equal((await chat(s.url, { temperature: 1.5, top_p: null })).status, 200);
      assert.equal(last().temperature, 1.5);
      assert.equal(last().topP, 0.7);
      assert.equal((await ollama(s.url, {})).status, 200);
      assert.equal(last().temperature, 0.3);
      assert.equal(last().topP, 0.7);
      assert.equal((await ollama(s.url, { top_p: 0.5 })).status, 200);
      assert.equal(last().topP, 0.5);
    } finally {
      await s.close();
    }
  });

  it('without them, each API keeps its own defaults (OpenAI 1 and 1, Ollama 0.8 and 0.9)', async () => {
    const s = await startFakeServer({ script: () => [5, 6] });
    try {
      await chat(s.url, {});
      assert.equal(s.engine.submitted.at(-1)!.sampling.temperature, 1);
      await ollama(s.url, {});
      assert.equal(s.engine.submitted.at(-1)!.sampling.temperature, 0.8);
      assert.equal(s.engine.submitted.at(-1)!.sampling.topP, 0.9);
    } finally {
      await s.close();
    }
  });
});

describe('a server over a LoadingEngine', needFixtures, () => {
  it('is loading, then serves once the engine is ready; its context is held to the engine’s KV size', async () => {
    const loading = new LoadingEngine<FakeEngine & { maxSequenceTokens?: number }>();
    const s = await startServerOver(loading, { maxModelLen: 4096 });
    try {
      assert.deepEqual(await (await fetch(`${s.url}/health`)).json(), { status: 'loading' });
      const engine = Object.assign(new FakeEngine({ script: () => [5] }), { maxSequenceTokens: 300 });
      loading.ready(engine);
      assert.deepEqual(await (await fetch(`${s.url}/health`)).json(), { status: 'ok' });
      const models = (await (await fetch(`${s.url}/v1/models`)).json()) as { data: { max_model_len: number }[] };
      assert.equal(models.data[0]!.max_model_len, 300);
    } finally {
      await s.close();
    }
  });

  it('says "error" once loading failed', async () => {
    const loading = new LoadingEngine();
    const s = await startServerOver(loading);
    try {
      loading.fail(new Error('out of memory'));
      const r = await fetch(`${s.url}/health`);
      assert.equal(r.status, 503);
      assert.deepEqual(await r.json(), { status: 'error', message: 'out of memory' });
    } finally {
      await s.close();
    }
  });
});
