// API fields → SamplingParams, validated once; an out-of-range value becomes a 400 that names the field as the
// client spelled it (OpenAI's `top_p`, Ollama's `options.top_p`), not as SamplingParams does.
import { SamplingParamError, validateSamplingParams, type SamplingParams } from '../engine/sampling-params.js';
import { badRequest } from './errors.js';

export type FieldNames = Record<keyof SamplingParams, string>;

export function buildSampling(fields: Partial<SamplingParams>, names: FieldNames, vocabSize: number): SamplingParams {
  // Fields absent or null in the request fall back to the defaults.
  const given: Partial<SamplingParams> = {};
  for (const [k, v] of Object.entries(fields) as [keyof SamplingParams, unknown][]) {
    if (v !== undefined && v !== null) (given as Record<string, unknown>)[k] = v;
  }
  try {
    return validateSamplingParams(given, { vocabSize });
  } catch (e) {
    if (e instanceof SamplingParamError) {
      const param = names[e.field];
      throw badRequest(`${param}: ${e.message.slice(e.field.length + 2)}`, param);
    }
    throw e;
  }
}

/** OpenAI's `logit_bias`: `{"<token id>": bias}` → Map. */
export function parseLogitBias(v: Record<string, unknown> | null | undefined, param: string): Map<number, number> | undefined {
  if (v === undefined || v === null) return undefined;
  const out = new Map<number, number>();
  for (const [key, bias] of Object.entries(v)) {
    if (!/^\d+$/.test(key)) throw badRequest(`${param}: key ${JSON.stringify(key)} is not a token id`, param);
    out.set(Number(key), bias as number);
  }
  return out;
}

/** `stop` as a string, a list of strings, or null → the list. */
export function stopStrings(v: string | string[] | null | undefined): string[] {
  if (v === undefined || v === null) return [];
  return (typeof v === 'string' ? [v] : v).filter((s) => s !== '');
}
