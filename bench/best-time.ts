// The timing rule the micro-benchmarks share: on a shared machine the least disturbed batch is the truest.

/** Seconds per call of fn: the best of timed batches (each at least 50 ms, at least 3, up to 200)
 *  after one warm-up call, batches going on until budgetS has passed. */
export function bestSecondsPerCall(fn: () => void, budgetS: number): number {
  fn();
  let best = Infinity;
  const deadline = performance.now() + budgetS * 1000;
  for (let batch = 0; batch < 3 || performance.now() < deadline; batch++) {
    let reps = 0;
    const t0 = performance.now();
    do {
      fn();
      reps++;
    } while (performance.now() - t0 < 50);
    best = Math.min(best, (performance.now() - t0) / 1000 / reps);
    if (batch >= 200) break;
  }
  return best;
}
