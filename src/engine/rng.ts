// Small seeded PRNG for per-request sampling: xoshiro128** (Blackman & Vigna), seeded through splitmix64.
// Same seed → same stream on every platform; unseeded requests draw their state from the OS (crypto).
import { getRandomValues } from 'node:crypto';

const MASK64 = (1n << 64n) - 1n;

/** splitmix64: expands one 64-bit seed into well-mixed 64-bit words (used only to seed, so BigInt speed is fine). */
export class SplitMix64 {
  private state: bigint;

  constructor(seed: bigint) {
    this.state = BigInt.asUintN(64, seed);
  }

  next(): bigint {
    this.state = (this.state + 0x9e3779b97f4a7c15n) & MASK64;
    let z = this.state;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK64;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK64;
    return z ^ (z >> 31n);
  }
}

const TWO_POW_26 = 67108864;
const TWO_POW_53 = 9007199254740992;

/** xoshiro128**: 128-bit state, 32-bit outputs; all arithmetic stays in int32 so V8 keeps it fast. */
export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  /** Raw state words; an all-zero state is the one fixed point of the generator, so it is refused. */
  constructor(s0: number, s1: number, s2: number, s3: number) {
    if ((s0 | s1 | s2 | s3) === 0) throw new RangeError('xoshiro128** state must not be all zero');
    this.s0 = s0 | 0;
    this.s1 = s1 | 0;
    this.s2 = s2 | 0;
    this.s3 = s3 | 0;
  }

  /** Seeds from any safe integer (negative too: it is taken modulo 2^64), as a request's `seed` field. */
  static fromSeed(seed: number | bigint): Rng {
    if (typeof seed === 'number' && !Number.isSafeInteger(seed)) {
      throw new RangeError(`seed must be a safe integer, got ${seed}`);
    }
    const sm = new SplitMix64(BigInt(seed));
    const a = sm.next();
    const b = sm.next();
    // Low word first; splitmix64 never yields two zero words in a row, so the state is never all zero.
    return new Rng(Number(a & 0xffffffffn), Number(a >> 32n), Number(b & 0xffffffffn), Number(b >> 32n));
  }

  /** An unpredictable generator for requests without a seed. */
  static fromEntropy(): Rng {
    const w = new Uint32Array(4);
    do getRandomValues(w);
    while ((w[0]! | w[1]! | w[2]! | w[3]!) === 0);
    return new Rng(w[0]!, w[1]!, w[2]!, w[3]!);
  }

  /** Next 32-bit output as an unsigned integer in [0, 2^32). */
  nextUint32(): number {
    const s1 = this.s1;
    const x = Math.imul(s1, 5);
    const result = Math.imul((x << 7) | (x >>> 25), 9) >>> 0;
    const t = s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= s1;
    this.s1 = s1 ^ this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = (this.s3 << 11) | (this.s3 >>> 21);
    return result;
  }

  /** Uniform double in [0, 1) with 53 random bits (upper bits of two outputs, the generator's best bits). */
  nextFloat(): number {
    const hi = this.nextUint32() >>> 5;
    const lo = this.nextUint32() >>> 6;
    return (hi * TWO_POW_26 + lo) / TWO_POW_53;
  }
}
