// Test files on disk: a GGUF model cut into split files as llama-gguf-split writes them, and raw byte reads.
import assert from 'node:assert/strict';
import { closeSync, openSync, readSync } from 'node:fs';
import { join } from 'node:path';
import { readGgufFile } from '../../src/formats/gguf.js';
import { GgufWriter } from '../../src/formats/gguf-writer.js';

export function readAt(file: string, offset: number, length: number): Buffer {
  const fd = openSync(file, 'r');
  try {
    const b = Buffer.alloc(length);
    assert.equal(readSync(fd, b, 0, length, offset), length);
    return b;
  } finally {
    closeSync(fd);
  }
}

/** Writes `src` as n splits the way llama-gguf-split does: all metadata in the first, split.* keys in each. */
export async function writeSplits(src: string, dir: string, prefix: string, n: number, withMetadata: boolean): Promise<string[]> {
  const h = readGgufFile(src);
  const paths: string[] = [];
  const per = Math.ceil(h.tensors.length / n);
  for (let i = 0; i < n; i++) {
    const path = join(dir, `${prefix}-${String(i + 1).padStart(5, '0')}-of-${String(n).padStart(5, '0')}.gguf`);
    const w = new GgufWriter(path);
    if (i === 0) for (const [k, v] of h.metadata) w.addMetadata(k, v, h.metadataTypes.get(k));
    if (withMetadata) {
      w.addMetadata('split.no', i, 'u16');
      w.addMetadata('split.count', n, 'u16');
      w.addMetadata('split.tensors.count', h.tensors.length, 'i32');
    }
    const mine = h.tensors.slice(i * per, (i + 1) * per);
    for (const t of mine) w.addTensorInfo(t.name, t.type, t.shape);
    await w.writeHeader();
    for (const t of mine) await w.writeTensorData(t.name, readAt(t.file, t.offset, t.byteLength));
    await w.close();
    paths.push(path);
  }
  return paths;
}

