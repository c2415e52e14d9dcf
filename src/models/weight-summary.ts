// What a model's weight files amount to, for Ollama's /api/tags and /api/show: bytes on disk, parameters (every
// tensor's elements, from the tensor infos alone: no weight is read), and the quantization as llama.cpp names it.
import { statSync } from 'node:fs';
import type { GgufModelFile } from '../formats/gguf.js';
import { ggmlTypeName, llamaFileTypeName } from '../formats/gguf-types.js';
import type { SafetensorsModel } from '../formats/safetensors.js';

export interface WeightSummary {
  /** Every tensor's elements, summed. */
  parameterCount: number;
  /** Bytes of the weight files (all splits or shards). */
  sizeBytes: number;
  /** 'Q4_K_M', 'F16', 'BF16'…: the GGUF file type, or the dtype holding most parameters. */
  quantization: string;
}

function elements(shape: readonly number[]): number {
  return shape.reduce((n, d) => n * d, 1);
}

/** The key whose tensors hold the most elements (ties: the first seen). */
function dominant(byType: Map<string, number>): string {
  let best = '';
  let most = -1;
  for (const [type, n] of byType) {
    if (n > most) {
      best = type;
      most = n;
    }
  }
  return best;
}

function fileBytes(paths: readonly string[]): number {
  return paths.reduce((sum, p) => sum + statSync(p).size, 0);
}

export function summarizeGguf(file: GgufModelFile): WeightSummary {
  let parameters = 0;
  // Norms and biases stay F32 in every quantized file: matrices decide the type.
  const matrices = new Map<string, number>();
  for (const t of file.tensors.values()) {
    const n = elements(t.shape);
    parameters += n;
    if (t.shape.length >= 2) {
      const name = ggmlTypeName(t.type);
      matrices.set(name, (matrices.get(name) ?? 0) + n);
    }
  }
  const fileType = file.metadata.get('general.file_type');
  const named = typeof fileType === 'number' ? llamaFileTypeName(fileType) : undefined;
  return { parameterCount: parameters, sizeBytes: fileBytes(file.paths), quantization: named ?? dominant(matrices) };
}

export function summarizeSafetensors(model: SafetensorsModel): WeightSummary {
  let parameters = 0;
  const byDtype = new Map<string, number>();
  for (const t of model.tensors.values()) {
    const n = elements(t.shape);
    parameters += n;
    byDtype.set(t.dtype, (byDtype.get(t.dtype) ?? 0) + n);
  }
  return { parameterCount: parameters, sizeBytes: fileBytes(model.files), quantization: dominant(byDtype) };
}
