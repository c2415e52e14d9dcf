// Reads one weight into host memory as float32 (dequantized natively). For small tensors
// (norm weights, rope tables) and for the float64 reference on tiny models only.
import { closeSync, openSync, readSync } from 'node:fs';
import type { WeightLocation } from './backend.js';
import { DType } from './dtype.js';
import { loadNative } from './native.js';

export function readWeightBytes(loc: WeightLocation): Uint8Array {
  if (loc.parts) {
    // A stack of pieces (experts kept apart in the file): their bytes one after another.
    const out = new Uint8Array(loc.byteLength);
    let at = 0;
    for (const p of loc.parts) {
      out.set(readWeightBytes(p), at);
      at += p.byteLength;
    }
    return out;
  }
  const buf = new Uint8Array(loc.byteLength);
  const fd = openSync(loc.file, 'r');
  try {
    let done = 0;
    while (done < buf.length) {
      const n = readSync(fd, buf, done, buf.length - done, loc.offset + done);
      if (n === 0) throw new Error(`${loc.file}: unexpected end of file reading ${loc.byteLength} bytes at ${loc.offset}`);
      done += n;
    }
  } finally {
    closeSync(fd);
  }
  return buf;
}

export function readWeightF32(loc: WeightLocation): Float32Array {
  const bytes = readWeightBytes(loc);
  const n = loc.shape.reduce((a, b) => a * b, 1);
  if (loc.dtype === DType.F32) return new Float32Array(bytes.buffer, bytes.byteOffset, n);
  return loadNative().dequantize(loc.dtype, bytes, n);
}
