// Seeded questions of the kinds the demo model was trained on (models/README.md), so load from the soak and storm
// benches looks like real traffic to it: short arithmetic, counting and list prompts, and long ones for prefill.
import { Rng } from '../src/engine/rng.js';

export class QuestionSource {
  private readonly rng: Rng;

  constructor(seed: number) {
    this.rng = Rng.fromSeed(seed);
  }

  private int(lo: number, hi: number): number {
    return lo + (this.rng.nextUint32() % (hi - lo + 1));
  }

  chance(p: number): boolean {
    return this.rng.nextUint32() / 2 ** 32 < p;
  }

  /** A short question (about 10–30 prompt tokens). */
  short(): string {
    const a = this.int(10, 99);
    const b = this.int(10, 99);
    const list = Array.from({ length: this.int(2, 7) }, () => this.int(0, 99)).join(', ');
    switch (this.int(0, 5)) {
      case 0: return `What is ${a}+${b}?`;
      case 1: return `Subtract ${a} from ${b}.`;
      case 2: return `What is ${a}*${this.int(2, 12)}?`;
      case 3: return `Reverse the list: ${list}.`;
      case 4: return `Sort in descending order: ${list}`;
      default: return `Convert ${this.int(1, 20)} kilometers to meters.`;
    }
  }

  /** A multiplication: the demo model answers with its working (`47*8 = 40*8 + 7*8 = …`), some 20 tokens. */
  multiplication(): string {
    return `What is ${this.int(13, 99)}*${this.int(3, 9)}?`;
  }

  /**
   * A question with a long list in front, so its prefill takes several engine steps: about `tokens` prompt tokens
   * (the demo tokenizer reads digits one at a time: "57, " is 4 tokens).
   */
  long(tokens: number): string {
    const n = Math.max(1, Math.floor(tokens / 4));
    return `Here are some numbers: ${Array.from({ length: n }, () => this.int(10, 99)).join(', ')}. ${this.short()}`;
  }
}
