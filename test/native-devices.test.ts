// The one tensor table the CPU and CUDA backends share (native/core/tensor_table.h): handles are
// unique across devices, a handle given to another device's function is an error that names both,
// each backend's endStep frees only its own per-step tensors, and nothing leaks. The CUDA cases
// run where cudaAvailable(); test/cuda/devices.test.ts covers the GPU side in more depth.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { CpuBackend } from '../src/backend/cpu-backend.js';
import { CudaBackend, cudaAvailable, cudaNative, cudaUnavailableReason, type CudaNative } from '../src/backend/cuda-backend.js';
import { DType } from '../src/backend/dtype.js';
import { loadNative, type TableStats } from '../src/backend/native.js';

/** The CPU's table functions (native/napi/tensor_napi.cpp, ops_napi.cpp). */
interface CpuTable {
  tAlloc(dtype: number, shape: number[], scratch: boolean): number;
  tUpload(h: number, data: Float32Array): void;
  tDownload(h: number): Float32Array;
  tRelease(h: number): void;
  tReleaseScratch(): void;
  tStats(): { liveTensors: number; liveBytes: number; mappings: number };
  tableStats(): TableStats;
  mapFile(path: string): number;
  unmapFile(m: number): void;
  tFromMapping(m: number, offset: number, dtype: number, shape: number[]): number;
  opRmsNorm(x: number, w: number, eps: number): number;
  opAddInPlace(a: number, b: number): void;
}

const n = loadNative() as unknown as CpuTable;
const withCuda = cudaAvailable() ? {} : { skip: `CUDA case skipped: ${cudaUnavailableReason()}` };
const gpu = (): CudaNative => cudaNative()!;

/** What the table holds now, to compare after a test: every device's counts and the mappings. */
const snapshot = (): string => JSON.stringify(n.tableStats());

describe('native tensor table: one handle space for every device', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kt-devices-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('handles stay unique while live, and released ones are reused without collisions', () => {
    const start = snapshot();
    const cpuAtStart = n.tableStats().devices['cpu']?.liveTensors ?? 0;
    const live = new Set<number>();
    const add = (h: number): void => {
      assert.ok(!live.has(h), `handle ${h} handed out twice`);
      live.add(h);
    };
    for (let i = 0; i < 8; i++) add(n.tAlloc(DType.F32, [4], i % 2 === 0));
    const [a, b] = [...live];
    n.tRelease(a!);
    n.tRelease(b!);
    live.delete(a!);
    live.delete(b!);
    for (let i = 0; i < 4; i++) add(n.tAlloc(DType.F32, [4], false));
    assert.equal(n.tableStats().devices['cpu']?.liveTensors, cpuAtStart + live.size);
    for (const h of live) n.tRelease(h);
    assert.equal(snapshot(), start);
  });

  it('CPU and CUDA tensors share the handle space; the stats count each device and the total', withCuda, () => {
    const start = n.tableStats();
    const cpu = [n.tAlloc(DType.F32, [16], false), n.tAlloc(DType.F32, [16], true)];
    const cuda = [gpu().cudaAlloc(DType.F32, [32], false), gpu().cudaAlloc(DType.F32, [32], true)];
    assert.equal(new Set([...cpu, ...cuda]).size, 4, `handles ${cpu} and ${cuda} overlap`);
    const s = n.tableStats();
    assert.equal(s.liveTensors, start.liveTensors + 4);
    assert.equal(s.devices['cpu']!.liveTensors, (start.devices['cpu']?.liveTensors ?? 0) + 2);
    assert.equal(s.devices['cuda:0']!.liveBytes, (start.devices['cuda:0']?.liveBytes ?? 0) + 2 * 32 * 4);
    assert.equal(gpu().cudaStats().liveTensors, gpu().cudaStats(0).liveTensors);
    n.tRelease(cpu[0]!);
    n.tRelease(cpu[1]!);
    gpu().cudaRelease(cuda[0]!);
    gpu().cudaRelease(cuda[1]!);
    assert.deepEqual(n.tableStats(), start);
  });

  it('a released handle is an error naming the op, never another tensor', () => {
    const h = n.tAlloc(DType.F32, [4], false);
    n.tRelease(h);
    assert.throws(() => n.tDownload(h), new RegExp(`download: argument 0: invalid or released tensor handle ${h}`));
    assert.throws(() => n.tRelease(h), new RegExp(`release: argument 0: invalid or released tensor handle ${h}`));
  });

  it("a CUDA function given a CPU handle, or a CPU op a CUDA one, throws naming the tensor's device", withCuda, () => {
    const start = snapshot();
    const x = n.tAlloc(DType.F32, [2, 8], false);
    const w = n.tAlloc(DType.F32, [8], false);
    const gx = gpu().cudaAlloc(DType.F32, [2, 8], false);
    const gw = gpu().cudaAlloc(DType.F32, [8], false);
    assert.throws(() => gpu().cudaOpRmsNorm(x, gw, 1e-6), new RegExp(`cudaOpRmsNorm: tensor ${x} is on cpu, not on a CUDA device`));
    assert.throws(() => gpu().cudaOpRmsNorm(gx, w, 1e-6), new RegExp(`cudaOpRmsNorm: tensor ${w} is on cpu, tensor ${gx} on cuda:0`));
    assert.throws(() => n.opRmsNorm(x, gw, 1e-6), new RegExp(`rmsNorm: argument 1: tensor ${gw} is on cuda:0, not on the cpu`));
    assert.throws(() => n.tDownload(gx), /download: argument 0: tensor \d+ is on cuda:0, not on the cpu/);
    assert.throws(() => gpu().cudaDownload(x), /cudaDownload: tensor \d+ is on cpu, not on a CUDA device/);
    assert.throws(() => n.tRelease(gx), /release: argument 0: tensor \d+ is on cuda:0, not on the cpu/);
    assert.throws(() => gpu().cudaRelease(x), /cudaRelease: argument 0: tensor \d+ is on cpu, not on a CUDA device/);
    assert.throws(() => gpu().cudaPersist(x), /cudaPersist: argument 0: tensor \d+ is on cpu/);
    // The failed calls released nothing: every tensor is still there, then goes.
    n.tRelease(x);
    n.tRelease(w);
    gpu().cudaRelease(gx);
    gpu().cudaRelease(gw);
    assert.equal(snapshot(), start);
  });

  it('tReleaseScratch frees the CPU per-step tensors only; persistent ones stay', () => {
    const start = snapshot();
    const keep = n.tAlloc(DType.F32, [8], false);
    const step = [n.tAlloc(DType.F32, [8], true), n.tAlloc(DType.F32, [8], true)];
    n.tReleaseScratch();
    for (const h of step) assert.throws(() => n.tDownload(h), /invalid or released tensor handle/);
    assert.equal(n.tDownload(keep).length, 8);
    n.tRelease(keep);
    assert.equal(snapshot(), start);
  });

  it("each backend's endStep frees its own device's per-step tensors only", withCuda, () => {
    const start = snapshot();
    const cpu = new CpuBackend();
    const cuda = new CudaBackend();
    const data = Float32Array.from({ length: 8 }, (_, i) => i);
    const cStep = cpu.inputF32(data, [8]);
    const gStep = cuda.inputF32(data, [8]);
    cpu.endStep();
    assert.deepEqual(cuda.read(gStep), data, 'the CUDA per-step tensor survives the CPU endStep');
    const cStep2 = cpu.inputF32(data, [8]);
    cuda.endStep();
    assert.deepEqual(cpu.read(cStep2), data, 'the CPU per-step tensor survives the CUDA endStep');
    assert.throws(() => cpu.read(cStep), /used after it was freed/);
    cpu.endStep();
    assert.equal(snapshot(), start);
  });

  it('two CPU backends share the CPU device, so either endStep frees both per-step sets (as before devices)', () => {
    const start = snapshot();
    const a = new CpuBackend();
    const b = new CpuBackend();
    const t = b.inputF32(new Float32Array(4), [4]);
    const h = (t as unknown as { handle: number }).handle;
    a.endStep();
    assert.throws(() => n.tDownload(h), /invalid or released tensor handle/);
    b.endStep();
    assert.equal(snapshot(), start);
  });

  it('no leaks: ops, mapped weights and step releases leave the table as they found it', () => {
    const start = snapshot();
    const file = join(dir, 'w.bin');
    writeFileSync(file, new Uint8Array(Float32Array.from({ length: 8 }, () => 1).buffer));
    const m = n.mapFile(file);
    const w = n.tFromMapping(m, 0, DType.F32, [8]);
    n.unmapFile(m);  // the tensor keeps the bytes mapped
    const x = n.tAlloc(DType.F32, [2, 8], false);
    n.tUpload(x, Float32Array.from({ length: 16 }, (_, i) => i + 1));
    for (let step = 0; step < 3; step++) {
      const y = n.opRmsNorm(x, w, 1e-6);
      n.opAddInPlace(y, y);
      n.tReleaseScratch();
    }
    n.tRelease(x);
    n.tRelease(w);
    assert.equal(snapshot(), start);
  });

  it('one mapping feeds a CPU tensor and a CUDA tensor', withCuda, () => {
    const start = snapshot();
    const values = Float32Array.from({ length: 8 }, (_, i) => i / 2);
    const file = join(dir, 'shared.bin');
    writeFileSync(file, new Uint8Array(values.buffer));
    const m = n.mapFile(file);
    const c = n.tFromMapping(m, 0, DType.F32, [8]);
    const g = gpu().cudaFromMapping(m, 0, DType.F32, [8]);
    gpu().cudaUnmapFile(m);  // one table: either backend's unmap drops it
    assert.equal(n.tableStats().mappings, (JSON.parse(start) as TableStats).mappings);
    assert.deepEqual(n.tDownload(c), values);
    assert.deepEqual(gpu().cudaDownload(g), values);
    n.tRelease(c);
    gpu().cudaRelease(g);
    assert.equal(snapshot(), start);
  });
});
