// The CPU backend: tensors live in native memory (or mapped weight files) and every op
// is one call into the C++ kernels of native/cpu.
import type { BackendCapabilities } from './backend.js';
import { HandleBackend, type NativeTensorOps } from './handle-backend.js';
import { loadNative, type NativeInfo } from './native.js';

/** Native functions of native/napi/tensor_napi.cpp and ops_napi.cpp. */
interface CpuNative {
  tAlloc: NativeTensorOps['alloc'];
  mapFile: NativeTensorOps['mapFile'];
  unmapFile: NativeTensorOps['unmapFile'];
  tFromMapping: NativeTensorOps['fromMapping'];
  tUpload: NativeTensorOps['upload'];
  tDownload: NativeTensorOps['download'];
  tRelease: NativeTensorOps['release'];
  tReleaseScratch: NativeTensorOps['releaseScratch'];
  tStats(): CpuStats;
  tStackMappings: NativeTensorOps['stackMappings'];
}

export interface CpuStats {
  liveTensors: number;
  liveBytes: number;
  mappings: number;
}

function cpuOps(): { ops: NativeTensorOps; native: CpuNative } {
  const addon = loadNative();
  const n = addon as unknown as CpuNative & Pick<NativeTensorOps, `op${string}` & keyof NativeTensorOps>;
  const ops: NativeTensorOps = {
    alloc: n.tAlloc,
    mapFile: n.mapFile,
    unmapFile: n.unmapFile,
    fromMapping: n.tFromMapping,
    upload: n.tUpload,
    download: n.tDownload,
    release: n.tRelease,
    releaseScratch: n.tReleaseScratch,
    opEmbedding: n.opEmbedding,
    opRmsNorm: n.opRmsNorm,
    opMatmul: n.opMatmul,
    opRope: n.opRope,
    opStoreKv: n.opStoreKv,
    opPagedAttention: n.opPagedAttention,
    opSiluMul: n.opSiluMul,
    opAddInPlace: n.opAddInPlace,
    opGatherRows: n.opGatherRows,
    stackMappings: n.tStackMappings,
    opMoeRoute: n.opMoeRoute,
    opMoeExperts: n.opMoeExperts,
  };
  return { ops, native: n };
}

export class CpuBackend extends HandleBackend {
  readonly name = 'cpu';
  readonly device = 'cpu';
  readonly capabilities: BackendCapabilities = { kvDtypes: ['f32'] };
  private readonly native: CpuNative;

  constructor() {
    const { ops, native } = cpuOps();
    super(ops);
    this.native = native;
  }

  describeDevice(): string {
    const { threads, simd } = this.info();
    return `CPU, ${threads} threads, ${simd}`;
  }

  info(): NativeInfo {
    return loadNative().info();
  }

  /** Live native tensors and bytes, for leak checks in tests. */
  stats(): CpuStats {
    return this.native.tStats();
  }
}
