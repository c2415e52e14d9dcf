// Generated token ids → the text a client sees, one token at a time: incremental detokenization, stop strings
// (matched on text, never emitted; text that could be the start of a stop string is held back until it can't),
// and the split of a reasoning model's thinking (up to `</think>`) from its answer.
import { IncrementalDetokenizer, type Tokenizer } from '../tokenizer/index.js';

const THINK_OPEN = '<think>';
const THINK_CLOSE = '</think>';

/** Length of the longest suffix of `text` that is a proper prefix of one of `needles`. */
export function partialSuffixLength(text: string, needles: readonly string[]): number {
  let best = 0;
  for (const n of needles) {
    for (let k = Math.min(text.length, n.length - 1); k > best; k--) {
      if (text.endsWith(n.slice(0, k))) {
        best = k;
        break;
      }
    }
  }
  return best;
}

/** Cuts the text at the first stop string; holds back a tail that may still become one. */
export class StopStringMatcher {
  private pending = '';
  private stopped = false;
  private readonly stops: string[];

  constructor(stops: readonly string[]) {
    this.stops = stops.filter((s) => s !== '');
  }

  get done(): boolean {
    return this.stopped;
  }

  /** Returns the text that is final now, and whether a stop string was reached (nothing follows then). */
  push(text: string): { text: string; stopped: boolean } {
    if (this.stopped) return { text: '', stopped: true };
    this.pending += text;
    let cut = -1;
    for (const s of this.stops) {
      const i = this.pending.indexOf(s);
      if (i >= 0 && (cut < 0 || i < cut)) cut = i;
    }
    if (cut >= 0) {
      const out = this.pending.slice(0, cut);
      this.pending = '';
      this.stopped = true;
      return { text: out, stopped: true };
    }
    const hold = partialSuffixLength(this.pending, this.stops);
    const out = this.pending.slice(0, this.pending.length - hold);
    this.pending = this.pending.slice(this.pending.length - hold);
    return { text: out, stopped: false };
  }

  /** At the end of generation, what was held back is text after all. */
  flush(): string {
    const out = this.pending;
    this.pending = '';
    return out;
  }
}

/**
 * `forced`: the prompt opened a `<think>` block, so text is reasoning until `</think>`.
 * `detect`: reasoning only if the model itself opens with `<think>`. `off`: all text is content.
 */
export type ReasoningMode = 'off' | 'forced' | 'detect';

export interface TextDelta {
  content: string;
  reasoning: string;
}

/** Routes text to `reasoning` until `</think>`, then to `content`; the tags themselves are dropped. */
export class ReasoningSplitter {
  private state: 'start' | 'reasoning' | 'content';
  private buffer = '';
  /** Newlines right after a tag belong to the template's layout, not to the text. */
  private trimStart: boolean;
  /** Whether any reasoning was seen (responses then carry reasoning_content). */
  used: boolean;

  constructor(mode: ReasoningMode) {
    this.state = mode === 'forced' ? 'reasoning' : mode === 'detect' ? 'start' : 'content';
    this.used = mode === 'forced';
    this.trimStart = mode === 'forced';
  }

  push(text: string): TextDelta {
    const out: TextDelta = { content: '', reasoning: '' };
    this.buffer += text;
    for (;;) {
      if (this.trimStart) {
        this.buffer = this.buffer.replace(/^\n+/, '');
        if (this.buffer === '') return out;
        this.trimStart = false;
      }
      if (this.state === 'start') {
        const t = this.buffer.trimStart();
        if (t.startsWith(THINK_OPEN)) {
          this.state = 'reasoning';
          this.used = true;
          this.trimStart = true;
          this.buffer = t.slice(THINK_OPEN.length);
          continue;
        }
        if (THINK_OPEN.startsWith(t)) return out; // still undecided (empty, whitespace or a partial tag)
        this.state = 'content';
      }
      if (this.state === 'content') {
        out.content += this.buffer;
        this.buffer = '';
        return out;
      }
      const end = this.buffer.indexOf(THINK_CLOSE);
      if (end >= 0) {
        out.reasoning += this.buffer.slice(0, end);
        this.buffer = this.buffer.slice(end + THINK_CLOSE.length);
        this.state = 'content';
        this.trimStart = true;
        continue;
      }
      const hold = partialSuffixLength(this.buffer, [THINK_CLOSE]);
      out.reasoning += this.buffer.slice(0, this.buffer.length - hold);
      this.buffer = this.buffer.slice(this.buffer.length - hold);
      return out;
    }
  }

  /** At the end: held-back text goes where it was heading (an unclosed think block stays reasoning). */
  flush(): TextDelta {
    const rest = this.buffer;
    this.buffer = '';
    return this.state === 'reasoning' ? { content: '', reasoning: rest } : { content: rest, reasoning: '' };
  }
}

/**
 * The tokenizer as seen by a reasoning stream: `<think>` / `</think>` survive skipSpecialTokens even where the
 * vocabulary marks them special (DeepSeek-R1 does), so the splitter can find them in the text.
 */
function keepTags(tok: Tokenizer, keep: ReadonlySet<number>): Tokenizer {
  const isSpecial = (id: number): boolean => tok.isSpecial(id) && !keep.has(id);
  const view: Tokenizer = {
    get vocabSize() { return tok.vocabSize; },
    get bosId() { return tok.bosId; },
    get addsBos() { return tok.addsBos; },
    get eosIds() { return tok.eosIds; },
    encode: (text, opts) => tok.encode(text, opts),
    decode: (ids, opts) =>
      opts?.skipSpecialTokens ? tok.decode(ids.filter((id) => !isSpecial(id))) : tok.decode(ids, opts),
    idToToken: (id) => tok.idToToken(id),
    tokenToId: (token) => tok.tokenToId(token),
    isSpecial,
  };
  if (tok.tokenBytes) view.tokenBytes = tok.tokenBytes.bind(tok);
  return view;
}

export interface TextStreamOptions {
  promptIds: readonly number[];
  /** Ids that end generation (EOS…): never turned into text. */
  stopIds: readonly number[];
  stopStrings: readonly string[];
  reasoning: ReasoningMode;
}

export interface TextStep extends TextDelta {
  /** A stop string was reached: nothing more will come, and tokens after this one are to be ignored. */
  stopped: boolean;
}

/** One choice's text, built token by token. */
export class TextStream {
  private readonly detok: IncrementalDetokenizer;
  private readonly stop: StopStringMatcher;
  private readonly split: ReasoningSplitter;
  private readonly stopIds: ReadonlySet<number>;
  /** Characters decoded so far (before stop strings cut anything): the offset of the next token's text. */
  private decodedChars = 0;

  constructor(tok: Tokenizer, opts: TextStreamOptions) {
    const tags = [THINK_OPEN, THINK_CLOSE].map((t) => tok.tokenToId(t)).filter((id): id is number => id !== undefined);
    const view = opts.reasoning === 'off' || tags.length === 0 ? tok : keepTags(tok, new Set(tags));
    this.detok = new IncrementalDetokenizer(view, { skipSpecialTokens: true, promptIds: opts.promptIds });
    this.stop = new StopStringMatcher(opts.stopStrings);
    this.split = new ReasoningSplitter(opts.reasoning);
    this.stopIds = new Set(opts.stopIds);
  }

  get textOffset(): number {
    return this.decodedChars;
  }

  /** Whether any thinking text was produced (or the prompt forced a think block). */
  get hasReasoning(): boolean {
    return this.split.used;
  }

  push(id: number): TextStep {
    if (this.stop.done) return { content: '', reasoning: '', stopped: true };
    if (this.stopIds.has(id)) return { content: '', reasoning: '', stopped: false };
    const text = this.detok.push(id);
    this.decodedChars += text.length;
    return this.route(text);
  }

  /** The end of generation: everything held back for lack of context is final now. */
  finish(): TextStep {
    if (this.stop.done) return { content: '', reasoning: '', stopped: true };
    const text = this.detok.flush();
    this.decodedChars += text.length;
    const step = this.route(text);
    if (step.stopped) return step;
    const tail = this.split.push(this.stop.flush());
    const rest = this.split.flush();
    return {
      content: step.content + tail.content + rest.content,
      reasoning: step.reasoning + tail.reasoning + rest.reasoning,
      stopped: false,
    };
  }

  private route(text: string): TextStep {
    const s = this.stop.push(text);
    const d = this.split.push(s.text);
    if (!s.stopped) return { ...d, stopped: false };
    const rest = this.split.flush();
    return { content: d.content + rest.content, reasoning: d.reasoning + rest.reasoning, stopped: true };
  }
}
