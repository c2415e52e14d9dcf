// Native state per device on the GPU: CPU and CUDA tensors side by side in the one tensor table,
// errors for a handle of the wrong device (never reinterpreted memory), each backend's endStep
// freeing only its own per-step tensors, and CUDA graphs captured and replayed on cuda:0's stream.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import type { Tensor } from '../../src/backend/backend.js';
import { CpuBackend } from '../../src/backend/cpu-backend.js';
import { CudaBackend } from '../../src/backend/cuda-backend.js';
import { DType } from '../../src/backend/dtype.js';
import { loadNative } from '../../src/backend/native.js';
import { freshSeed, needCuda, nmse, randn, WeightFiles } from './helpers.js';

const F32_TOL = 1e-10;
const handleOf = (t: Tensor): number => (t as unknown as { handle: number }).handle;

describe('CUDA devices: one tensor table, state per device', needCuda, () => {
  let cpu: CpuBackend;
  let gpu: CudaBackend;
  let files: WeightFiles;
  let start: string;
  const table = (): string => JSON.stringify(loadNative().tableStats());

  before(() => {
    cpu = new CpuBackend();
    gpu = new CudaBackend({ precision: 'f32' });
    files = new WeightFiles();
    start = table();
  });
  after(() => {
    files?.dispose();
  });

  it('CPU and CUDA tensors side by side: one weight file, one handle space, the same results', () => {
    const seed = freshSeed();
    const loc = files.write(DType.F32, randn(64 * 128, seed), 64, 128);
    const [wc, wg] = [cpu.loadWeight(loc), gpu.loadWeight(loc)];
    const xs = randn(4 * 128, seed + 1);
    const [xc, xg] = [cpu.constantF32(xs, [4, 128]), gpu.constantF32(xs, [4, 128])];
    const handles = [wc, wg, xc, xg].map(handleOf);
    assert.equal(new Set(handles).size, 4, `handles ${handles} overlap`);
    const s = loadNative().tableStats();
    assert.ok((s.devices['cpu']?.liveTensors ?? 0) >= 2 && (s.devices['cuda:0']?.liveTensors ?? 0) >= 2, JSON.stringify(s));
    const want = cpu.read(cpu.matmul(xc, wc));
    const got = gpu.read(gpu.matmul(xg, wg));
    assert.ok(nmse(got, want) <= F32_TOL, `matmul NMSE ${nmse(got, want)} (seed ${seed})`);
    cpu.endStep();
    gpu.endStep();
    cpu.free(wc, xc);
    gpu.free(wg, xg);
    cpu.releaseMappings();
    gpu.releaseMappings();
    assert.equal(table(), start);
  });

  it("a tensor given to another device's op throws naming both devices, through the backends too", () => {
    const n = gpu.native;
    const [xc, wc] = [cpu.constantF32(new Float32Array(2 * 8), [2, 8]), cpu.constantF32(new Float32Array(8), [8])];
    const [xg, wg] = [gpu.constantF32(new Float32Array(2 * 8), [2, 8]), gpu.constantF32(new Float32Array(8), [8])];
    const [hxc, hwc, hxg, hwg] = [xc, wc, xg, wg].map(handleOf) as [number, number, number, number];
    assert.throws(() => gpu.rmsNorm(xc, wg, 1e-6), new RegExp(`cudaOpRmsNorm: tensor ${hxc} is on cpu, not on a CUDA device`));
    assert.throws(() => gpu.rmsNorm(xg, wc, 1e-6), new RegExp(`cudaOpRmsNorm: tensor ${hwc} is on cpu, tensor ${hxg} on cuda:0`));
    assert.throws(() => cpu.rmsNorm(xg, wc, 1e-6), new RegExp(`rmsNorm: argument 0: tensor ${hxg} is on cuda:0, not on the cpu`));
    assert.throws(() => cpu.rmsNorm(xc, wg, 1e-6), new RegExp(`rmsNorm: argument 1: tensor ${hwg} is on cuda:0, not on the cpu`));
    assert.throws(() => gpu.read(xc), /cudaDownload: tensor \d+ is on cpu/);
    assert.throws(() => cpu.read(xg), /download: argument 0: tensor \d+ is on cuda:0/);
    assert.throws(() => gpu.write(xc, new Float32Array(16)), /cudaUpload: tensor \d+ is on cpu/);
    assert.throws(() => n.cudaRelease(hxc), /cudaRelease: argument 0: tensor \d+ is on cpu, not on a CUDA device/);
    assert.throws(() => n.cudaPersist(hxc), /cudaPersist: argument 0: tensor \d+ is on cpu/);
    assert.throws(() => n.cudaAlloc(DType.F32, [4], false, 99), /cudaAlloc: no CUDA device 99/);
    assert.throws(() => n.cudaGraphReplay(123456), /cudaGraphReplay: unknown graph/);
    // Nothing above freed or changed a tensor: they all still read.
    assert.equal(cpu.read(xc).length, 16);
    assert.equal(gpu.read(xg).length, 16);
    cpu.free(xc, wc);
    gpu.free(xg, wg);
    assert.equal(table(), start);
  });

  it('explicit device 0 is the default device', () => {
    const n = gpu.native;
    assert.deepEqual({ ...n.cudaDeviceInfo(0), freeBytes: 0 }, { ...n.cudaDeviceInfo(), freeBytes: 0 });
    const h = n.cudaAlloc(DType.F32, [4], false, 0);
    assert.equal(n.cudaStats(0).liveTensors, n.cudaStats().liveTensors);
    n.cudaSynchronize(0);
    n.cudaRelease(h);
  });

  it("two backends' scratch: a CPU endStep leaves CUDA per-step tensors, and the reverse", () => {
    const xs = randn(3 * 64, freshSeed());
    const w = new Float32Array(64).fill(1);
    const [xc, wc] = [cpu.constantF32(xs, [3, 64]), cpu.constantF32(w, [64])];
    const [xg, wg] = [gpu.constantF32(xs, [3, 64]), gpu.constantF32(w, [64])];
    const gpuBefore = gpu.stats();
    const yg = gpu.rmsNorm(xg, wg, 1e-6);
    const yc = cpu.rmsNorm(xc, wc, 1e-6);
    cpu.endStep();
    assert.throws(() => cpu.read(yc), /used after it was freed/);
    assert.equal(gpu.stats().liveTensors, gpuBefore.liveTensors + 1, 'the CUDA per-step tensor survives the CPU endStep');
    const want = cpu.read(cpu.rmsNorm(xc, wc, 1e-6));
    assert.ok(nmse(gpu.read(yg), want) <= F32_TOL);
    const cpuBefore = cpu.stats();
    gpu.endStep();
    assert.equal(gpu.stats().liveTensors, gpuBefore.liveTensors);
    assert.equal(gpu.stats().poolInUseBytes, gpuBefore.poolInUseBytes);
    assert.equal(cpu.stats().liveTensors, cpuBefore.liveTensors, 'the CPU per-step tensor survives the CUDA endStep');
    // The device argument picks one device's scratch: cuda:0's here, and no CPU tensor.
    const zg = gpu.native.cudaAlloc(DType.F32, [8], true);
    gpu.native.cudaReleaseScratch(0);
    assert.throws(() => gpu.native.cudaDownload(zg), /invalid or released tensor handle/);
    assert.equal(cpu.stats().liveTensors, cpuBefore.liveTensors);
    cpu.endStep();
    cpu.free(xc, wc);
    gpu.free(xg, wg);
    assert.equal(table(), start);
  });

  it('graph capture and replay on the device stream: new inputs give new outputs', () => {
    const D = 256;
    const w = randn(D, freshSeed());
    const [wc, wg] = [cpu.constantF32(w, [D]), gpu.constantF32(w, [D])];
    const xg = gpu.zeros(DType.F32, [2, D]);
    const first = randn(2 * D, freshSeed());
    gpu.write(xg, first);
    gpu.captureBegin();
    const yg = gpu.rmsNorm(xg, wg, 1e-6);
    const graph = gpu.captureEnd();
    gpu.persist(yg);
    gpu.endStep();
    for (const xs of [first, randn(2 * D, freshSeed()), randn(2 * D, freshSeed())]) {
      gpu.write(xg, xs);
      gpu.replay(graph);
      const xc = cpu.constantF32(xs, [2, D]);
      const want = cpu.read(cpu.rmsNorm(xc, wc, 1e-6));
      const got = gpu.read(yg);
      assert.ok(nmse(got, want) <= F32_TOL, `replayed rmsNorm NMSE ${nmse(got, want)}`);
      cpu.endStep();
      cpu.free(xc);
    }
    gpu.releaseGraph(graph);
    assert.throws(() => gpu.replay(graph), /unknown graph/);
    gpu.free(yg, xg, wg);
    cpu.free(wc);
    assert.equal(table(), start);
  });
});
