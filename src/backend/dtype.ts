// Tensor element types, numbered as GGML numbers them (GGUF type ids pass straight through).
export const DType = {
  F32: 0,
  F16: 1,
  Q4_0: 2,
  Q4_1: 3,
  Q5_0: 6,
  Q5_1: 7,
  Q8_0: 8,
  Q2_K: 10,
  Q3_K: 11,
  Q4_K: 12,
  Q5_K: 13,
  Q6_K: 14,
  I32: 26,
  BF16: 30,
} as const;
export type DTypeId = number;

const names = new Map<number, string>(Object.entries(DType).map(([k, v]) => [v, k]));
export function dtypeName(t: DTypeId): string {
  return names.get(t) ?? `type#${t}`;
}

/** Safetensors dtype strings that map onto a weight type we compute with. */
export function dtypeFromSafetensors(s: string): DTypeId | undefined {
  return ({ F32: DType.F32, F16: DType.F16, BF16: DType.BF16, I32: DType.I32 } as Record<string, number>)[s];
}
