// Builds the native addon with cmake-js. CUDA is switched on where nvcc and cuBLAS
// are both present (KT_CUDA=0/1 in the environment overrides the guess).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

const require = createRequire(import.meta.url);

function hasCuda() {
  if (process.env.KT_CUDA !== undefined) return process.env.KT_CUDA === '1';
  const nvcc = spawnSync('nvcc', ['--version'], { stdio: 'ignore' });
  if (nvcc.status !== 0) return false;
  const roots = [process.env.CUDA_HOME, process.env.CUDA_PATH, '/usr/local/cuda'].filter(Boolean);
  return roots.some((r) => ['lib64', 'lib', 'targets/x86_64-linux/lib'].some((l) => existsSync(join(r, l, 'libcublas.so'))));
}

const cuda = hasCuda();
const cmakeJs = join(dirname(require.resolve('cmake-js/package.json')), 'bin', 'cmake-js');
const extra = process.argv.slice(2);
// A second build directory (--out dir) keeps parallel builds apart; build/ is what the loader finds.
const out = extra.includes('--out') ? [] : ['--out', process.env.KT_BUILD_DIR ?? 'build'];
const args = [cmakeJs, 'compile', ...out, `--CDKT_CUDA=${cuda ? 'ON' : 'OFF'}`, ...extra];
console.log(`ktserve: building native addon (CUDA ${cuda ? 'on' : 'off'})`);
execFileSync(process.execPath, args, { stdio: 'inherit' });
