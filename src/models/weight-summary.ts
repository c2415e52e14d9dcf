// What a model's weight files amount to, for Ollama's /api/tags and /api/show: bytes on disk, parameters (every
// tensor's elements, from the tensor infos alone: no weight is read), and the quantization as llama.cpp names it.
import { statSync } from 'node:fs';
import type { GgufModelFile } from '../formats/gguf.js';
import { ggmlTypeName } from '../formats/gguf-types.js';
import type { SafetensorsModel } from '../formats/safetensors.js';

export interface WeightSummary {
  /** Every tensor's elements, summed. */
  parameterCount: number;
  /** Bytes of the weight files (all splits or shards). */
  sizeBytes: number;
  /** 'Q4_K_M', 'F16', 'BF16'…: the GGUF file type, or the dtype holding most parameters. */
  quantization: string;
}

/**
 * llama.cpp's `llama_ftype` (GGUF `general.file_type`) by value: the mix a file was quantized to, which one tensor
 * type does not tell (Q4_K_M and Q4_K_S both hold mostly Q4_K). Values 4–6 and 33–35 were removed upstream.
 */
const LLAMA_FTYPES: Record<number, string> = {
  0: 'F32', 1: 'F16', 2: 'Q4_0', 3: 'Q4_1', 4: 'Q4_1_SOME_F16', 7: 'Q8_0', 8: 'Q5_0', 9: 'Q5_1',
  10: 'Q2_K', 11: 'Q3_K_S', 12: 'Q3_K_M', 13: 'Q3_K_L', 14: 'Q4_K_S', 15: 'Q4_K_M', 16: 'Q5_K_S', 17: 'Q5_K_M', 18: 'Q6_K',
  19: 'IQ2_XXS', 20: 'IQ2_XS', 21: 'Q2_K_S', 22: 'IQ3_XS', 23: 'IQ3_XXS', 24: 'IQ1_S', 25: 'IQ4_NL', 26: 'IQ3_S', 27: 'IQ3_M',
  28: 'IQ2_S', 29: 'IQ2_M', 30: 'IQ4_XS', 31: 'IQ1_M', 32: 'BF16', 36: 'TQ1_0', 37: 'TQ2_0', 38: 'MXFP4_MOE',
};

/** llama.cpp's flag on a file type it guessed rather than was told (llama_model_ftype_name prints "(guessed)"). */
const FTYPE_GUESSED = 1024;

export function llamaFileTypeName(fileType: number): string | undefined {
  return LLAMA_FTYPES[fileType & ~FTYPE_GUESSED];
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
