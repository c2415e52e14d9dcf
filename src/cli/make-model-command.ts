// `ktserve make-model`: writes a model with random weights in a real architecture and shape (GGUF or a
// safetensors directory, with the family's real tokenizer), so benchmarks need no download.
import { existsSync, renameSync, rmSync } from 'node:fs';
import { ProgressBar, formatBytes, formatDuration } from './progress.js';
import { parseFlags, UsageError, type FlagSpec } from './args.js';
import { GGUF_OUTTYPES, ggufTensorPlan, writeRandomGguf } from '../make-model/random-gguf.js';
import { randomModelPresets, withLayers } from '../make-model/random-model.js';
import { SAFETENSORS_DTYPES, writeRandomSafetensors, type SafetensorsDtype } from '../make-model/random-safetensors.js';

const presetNames = Object.keys(randomModelPresets);

export const makeModelFlags = [
  { name: 'preset', type: 'string', help: 'architecture and shape', choices: presetNames },
  { name: 'format', type: 'string', help: 'a GGUF file, or a Hugging Face directory with model.safetensors', default: 'gguf', choices: ['gguf', 'safetensors'] },
  {
    name: 'outtype',
    type: 'string',
    help: `weight type: GGUF ${GGUF_OUTTYPES.join('|')} (or any GGML type for every weight, e.g. Q4_K); safetensors ${SAFETENSORS_DTYPES.join('|')} (default: Q4_K_M for GGUF, BF16 for safetensors)`,
  },
  { name: 'out', type: 'string', help: 'output file (GGUF) or directory (safetensors); default <preset>[-<N>L]-<outtype>.gguf or <preset>[-<N>L]-<outtype>/', short: 'o' },
  { name: 'layers', type: 'int', help: "write only the preset's first N layers (a big shape measured on a smaller machine)", min: 1 },
  { name: 'seed', type: 'int', help: 'random seed; the same seed writes the same bytes', default: 0 },
  { name: 'name', type: 'string', help: 'general.name of the GGUF (default: random <preset>, random <preset>-<N>L with --layers)' },
  { name: 'force', type: 'bool', help: 'overwrite an existing output' },
  { name: 'list', type: 'bool', help: 'list the presets with their sizes and exit' },
] as const satisfies readonly FlagSpec[];

function listPresets(): string {
  const rows = presetNames.map((name) => {
    const s = randomModelPresets[name]!;
    const params = ggufTensorPlan(s).reduce((n, t) => n + t.shape.reduce((a, b) => a * b, 1), 0);
    const kind = s.moe ? `MoE ${s.moe.experts}×${s.moe.used}+${s.moe.shared}` : 'dense';
    return `  ${name.padEnd(18)} ${s.architecture.padEnd(10)} ${(params / 1e9).toFixed(2).padStart(6)} B params  ${kind}, ${s.layers} layers, hidden ${s.hidden}, vocab ${s.vocab}`;
  });
  return `presets:\n${rows.join('\n')}\n`;
}

export async function runMakeModel(argv: string[]): Promise<void> {
  const f = parseFlags(argv, makeModelFlags, {
    command: 'ktserve make-model',
    description: 'Write a model with random weights in a real architecture and shape, with its real tokenizer, as GGUF (as llama.cpp converts and quantizes) or safetensors.',
  });
  if (f.list) {
    process.stdout.write(listPresets());
    return;
  }
  if (f.preset === undefined) throw new UsageError(`--preset is required (one of ${presetNames.join(', ')}); --list shows their sizes`);
  const preset = randomModelPresets[f.preset]!;
  if (f.layers !== undefined && f.layers > preset.layers) {
    throw new UsageError(`--layers ${f.layers}: ${f.preset} has ${preset.layers} layers; give 1 to ${preset.layers}`);
  }
  const shape = f.layers === undefined ? preset : withLayers(preset, f.layers);
  const label = f.layers === undefined ? f.preset : `${f.preset}-${f.layers}L`;
  const gguf = f.format === 'gguf';
  const outtype = (f.outtype ?? (gguf ? 'Q4_K_M' : 'BF16')).toUpperCase();
  if (!gguf && !(SAFETENSORS_DTYPES as readonly string[]).includes(outtype)) {
    throw new UsageError(`--outtype for safetensors must be one of ${SAFETENSORS_DTYPES.join(', ')}, got ${outtype}`);
  }
  const out = f.out ?? (gguf ? `${label}-${outtype}.gguf` : `${label}-${outtype}`);
  if (existsSync(out) && !f.force) throw new UsageError(`${out} exists; pass --force to overwrite it`);

  let bar: ProgressBar | undefined;
  const onProgress = (done: number, total: number) => {
    bar ??= new ProgressBar(`writing ${out}`, total);
    bar.update(done);
  };
  const t0 = performance.now();
  let bytes: number;
  if (gguf) {
    // Written beside the target and renamed at the end, so a file at `out` is always complete.
    const tmp = `${out}.partial`;
    try {
      bytes = await writeRandomGguf(tmp, shape, { outtype, seed: f.seed, name: f.name ?? `random ${label}`, onProgress });
    } catch (err) {
      rmSync(tmp, { force: true });
      if (err instanceof Error && /unknown output type|no general.file_type/.test(err.message)) throw new UsageError(err.message);
      throw err;
    }
    renameSync(tmp, out);
  } else {
    bytes = await writeRandomSafetensors(out, shape, { dtype: outtype as SafetensorsDtype, seed: f.seed, onProgress });
  }
  bar?.finish();
  const secs = (performance.now() - t0) / 1000;
  process.stdout.write(`wrote ${out}: ${label} ${outtype}, ${formatBytes(bytes)} of weights in ${formatDuration(secs)} (${formatBytes(bytes / secs)}/s)\n`);
}
