// Translates the Oniguruma patterns of Hugging Face tokenizer.json files (and llama.cpp's pre-tokenizer table)
// into JavaScript RegExps with the `u` flag, keeping Oniguruma's meaning where the two dialects differ.
//
// Differences handled: `\s` (Oniguruma: Unicode White_Space incl. U+0085, not U+FEFF; JS: the reverse), `\d`/`\w`
// (Unicode in Oniguruma), `(?i:...)` groups, possessive quantifiers and atomic groups (emulated with a lookahead
// capture and a backreference), scripts written `\p{Han}`, `.` (Oniguruma excludes only \n), `^`/`$` (line anchors
// in Oniguruma's Ruby syntax; llama.cpp's std::regex uses whole-piece anchors), `\x{...}`, escaped punctuation.

export class UnsupportedRegexError extends Error {
  constructor(pattern: string, what: string) {
    super(`pre-tokenizer regex ${JSON.stringify(pattern)}: ${what} is not supported`);
    this.name = 'UnsupportedRegexError';
  }
}

/** Oniguruma's \s: the Unicode White_Space set, written as class members. */
const WHITESPACE = '\\t-\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000';
const WORD = '\\p{L}\\p{M}\\p{Nd}\\p{Pc}';

export interface RegexDialect {
  /** Ruby-syntax anchors: `^`/`$` match at line starts/ends (Hugging Face, Oniguruma). False: whole-piece anchors. */
  lineAnchors: boolean;
}

/** Compiles an Oniguruma pattern into a global, Unicode JS RegExp with the same matches. */
export function compileOnigurumaRegex(pattern: string, dialect: RegexDialect = { lineAnchors: true }): RegExp {
  const source = new Translator(pattern, dialect).run();
  try {
    return new RegExp(source, 'gu');
  } catch (e) {
    throw new UnsupportedRegexError(pattern, `its translation ${JSON.stringify(source)} (${(e as Error).message})`);
  }
}

/** A RegExp matching the literal text. */
export function literalRegex(text: string): RegExp {
  return new RegExp(text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'gu');
}

interface GroupFrame {
  outStart: number;
  caseInsensitive: boolean;
  /** Closing text: ')' or, for an atomic group, the end of its emulation. */
  close: string;
}

class Translator {
  private i = 0;
  private out = '';
  private caseInsensitive = false;
  private lastAtomStart = -1;
  private readonly groups: GroupFrame[] = [];
  private captureNames = 0;

  constructor(private readonly src: string, private readonly dialect: RegexDialect) {}

  run(): string {
    while (this.i < this.src.length) this.step();
    if (this.groups.length > 0) this.fail('an unclosed group');
    return this.out;
  }

  private fail(what: string): never {
    throw new UnsupportedRegexError(this.src, what);
  }

  private atom(text: string): void {
    this.lastAtomStart = this.out.length;
    this.out += text;
  }

  private step(): void {
    const c = this.src[this.i]!;
    switch (c) {
      case '\\': this.i++; this.atom(this.escapeOutside()); return;
      case '[': this.i++; this.atom(this.charClass()); return;
      case '(': this.openGroup(); return;
      case ')': this.closeGroup(); return;
      case '|': this.i++; this.out += '|'; this.lastAtomStart = -1; return;
      case '*': case '+': case '?': this.i++; this.quantifier(c); return;
      case '{': {
        const m = /^\{(\d*)(,(\d*))?\}/.exec(this.src.slice(this.i));
        if (m && (m[1] !== '' || (m[2] !== undefined && m[3] !== ''))) {
          this.i += m[0].length;
          const min = m[1] === '' ? '0' : m[1];
          this.quantifier(m[2] === undefined ? `{${min}}` : `{${min},${m[3]}}`);
        } else {
          this.i++;
          this.atom('\\{');
        }
        return;
      }
      case '^': this.i++; this.out += this.dialect.lineAnchors ? '(?<![^\\n])' : '^'; this.lastAtomStart = -1; return;
      case '$': this.i++; this.out += this.dialect.lineAnchors ? '(?![^\\n])' : '$'; this.lastAtomStart = -1; return;
      case '.': this.i++; this.atom('[^\\n]'); return;
      case '}': case ']': case '/': this.i++; this.atom('\\' + c); return;
      default: {
        const cp = this.src.codePointAt(this.i)!;
        const ch = String.fromCodePoint(cp);
        this.i += ch.length;
        this.atom(this.caseInsensitive ? caseFold(ch, false) : ch);
      }
    }
  }

  private quantifier(q: string): void {
    if (this.lastAtomStart < 0) this.fail(`a quantifier '${q}' with nothing to repeat`);
    const next = this.src[this.i];
    if (next === '?') {
      this.i++;
      this.out += q + '?';
    } else if (next === '+') {
      // Possessive: match greedily and never give back. (?=(X*))\k<p> takes what the lookahead took, atomically.
      this.i++;
      const name = `p${this.captureNames++}`;
      const repeated = this.out.slice(this.lastAtomStart) + q;
      this.out = this.out.slice(0, this.lastAtomStart) + `(?=(?<${name}>${repeated}))\\k<${name}>`;
    } else {
      this.out += q;
    }
  }

  private openGroup(): void {
    const rest = this.src.slice(this.i);
    const frame: GroupFrame = { outStart: this.out.length, caseInsensitive: this.caseInsensitive, close: ')' };
    let m: RegExpExecArray | null;
    if (rest.startsWith('(?#')) {
      const end = this.src.indexOf(')', this.i);
      if (end < 0) this.fail('an unclosed comment');
      this.i = end + 1;
      return;
    } else if ((m = /^\(\?([imx]*)(?:-([imx]*))?(:|\))/.exec(rest)) && (m[1] !== '' || m[2] !== undefined || m[3] === ':')) {
      if (/[mx]/.test((m[1] ?? '') + (m[2] ?? ''))) this.fail(`the flags in '${m[0]}'`);
      const ci = m[1]!.includes('i') ? true : (m[2] ?? '').includes('i') ? false : this.caseInsensitive;
      this.i += m[0].length;
      if (m[3] === ')') {
        // (?i) sets the flag for the rest of the enclosing group.
        this.caseInsensitive = ci;
        return;
      }
      this.out += '(?:';
      this.caseInsensitive = ci;
    } else if ((m = /^\(\?(=|!|<=|<!)/.exec(rest))) {
      this.i += m[0].length;
      this.out += m[0];
    } else if (rest.startsWith('(?>')) {
      this.i += 3;
      const name = `a${this.captureNames++}`;
      this.out += `(?=(?<${name}>`;
      frame.close = `))\\k<${name}>`;
    } else if ((m = /^\(\?P?<([A-Za-z_][A-Za-z0-9_]*)>/.exec(rest))) {
      this.i += m[0].length;
      this.out += `(?<${m[1]}>`;
    } else if (rest.startsWith('(?')) {
      this.fail(`the group syntax '${rest.slice(0, 4)}'`);
    } else {
      this.i++;
      this.out += '(';
    }
    this.groups.push(frame);
    this.lastAtomStart = -1;
  }

  private closeGroup(): void {
    const frame = this.groups.pop();
    if (!frame) this.fail('an unmatched )');
    this.i++;
    this.out += frame.close;
    this.caseInsensitive = frame.caseInsensitive;
    this.lastAtomStart = frame.outStart;
  }

  /** An escape outside a character class; `this.i` is just past the backslash. */
  private escapeOutside(): string {
    const c = this.src[this.i];
    if (c === undefined) this.fail('a trailing backslash');
    switch (c) {
      case 's': this.i++; return `[${WHITESPACE}]`;
      case 'S': this.i++; return `[^${WHITESPACE}]`;
      case 'd': this.i++; return '\\p{Nd}';
      case 'D': this.i++; return '\\P{Nd}';
      case 'w': this.i++; return `[${WORD}]`;
      case 'W': this.i++; return `[^${WORD}]`;
      case 'h': this.i++; return '[0-9a-fA-F]';
      case 'H': this.i++; return '[^0-9a-fA-F]';
      case 'A': this.i++; return '^';
      case 'z': this.i++; return '$';
      case 'Z': this.i++; return '(?=\\n?$)';
      case 'b': this.i++; return `(?:(?<=[${WORD}])(?![${WORD}])|(?<![${WORD}])(?=[${WORD}]))`;
      case 'B': this.i++; return `(?:(?<=[${WORD}])(?=[${WORD}])|(?<![${WORD}])(?![${WORD}]))`;
      default: return this.escapeCommon();
    }
  }

  /** Escapes with the same meaning inside and outside classes. */
  private escapeCommon(): string {
    const c = this.src[this.i]!;
    this.i++;
    switch (c) {
      case 't': return '\\t';
      case 'n': return '\\n';
      case 'r': return '\\r';
      case 'f': return '\\f';
      case 'v': return '\\v';
      case 'a': return '\\x07';
      case 'e': return '\\x1b';
      case '0': return '\\0';
      case 'p': case 'P': return this.property(c === 'P');
      case 'x': {
        const m = /^\{([0-9a-fA-F]{1,8})\}|^([0-9a-fA-F]{1,2})/.exec(this.src.slice(this.i));
        if (!m) this.fail('a malformed \\x escape');
        this.i += m[0].length;
        return `\\u{${(m[1] ?? m[2])!}}`;
      }
      case 'u': {
        const m = /^[0-9a-fA-F]{4}/.exec(this.src.slice(this.i));
        if (!m) this.fail('a malformed \\u escape');
        this.i += 4;
        return `\\u{${m[0]}}`;
      }
      default: {
        if (/[A-Za-z0-9]/.test(c)) this.fail(`the escape \\${c}`);
        // Escaped punctuation is a literal; \u{..} keeps it literal in both class and non-class position.
        const cp = this.src.codePointAt(this.i - 1)!;
        this.i += String.fromCodePoint(cp).length - 1;
        return `\\u{${cp.toString(16)}}`;
      }
    }
  }

  private property(negatedByCase: boolean): string {
    const m = /^\{(\^?)([A-Za-z_= ]+)\}/.exec(this.src.slice(this.i));
    if (!m) this.fail('a \\p without {name}');
    this.i += m[0].length;
    const negated = negatedByCase !== (m[1] === '^');
    const name = m[2]!.replace(/ /g, '_');
    const p = negated ? 'P' : 'p';
    for (const candidate of [name, `Script=${name}`]) {
      try {
        new RegExp(`\\p{${candidate}}`, 'u');
        return `\\${p}{${candidate}}`;
      } catch {
        // not a JS property name in this spelling; try the next
      }
    }
    this.fail(`the property \\p{${m[2]}}`);
  }

  /** A bracketed class; `this.i` is just past '['. */
  private charClass(): string {
    let body = '';
    let negated = false;
    if (this.src[this.i] === '^') {
      negated = true;
      this.i++;
    }
    let first = true;
    for (;;) {
      const c = this.src[this.i];
      if (c === undefined) this.fail('an unclosed character class');
      if (c === ']' && !first) {
        this.i++;
        break;
      }
      first = false;
      if (c === '[') this.fail('nested character classes and POSIX brackets');
      if (c === '&' && this.src[this.i + 1] === '&') this.fail('class intersection (&&)');
      if (c === '\\') {
        this.i++;
        const e = this.src[this.i];
        if (e === 's') { this.i++; body += WHITESPACE; continue; }
        if (e === 'd') { this.i++; body += '\\p{Nd}'; continue; }
        if (e === 'D') { this.i++; body += '\\P{Nd}'; continue; }
        if (e === 'w') { this.i++; body += WORD; continue; }
        if (e === 'h') { this.i++; body += '0-9a-fA-F'; continue; }
        if (e === 'S' || e === 'W' || e === 'H') this.fail(`\\${e} inside a character class`);
        body += this.escapeCommon();
        continue;
      }
      const cp = this.src.codePointAt(this.i)!;
      const ch = String.fromCodePoint(cp);
      this.i += ch.length;
      if (this.caseInsensitive && this.src[this.i] === '-' && this.src[this.i + 1] !== ']' && caseFold(ch, true) !== ch) {
        this.fail('a letter range in a case-insensitive class');
      }
      if (ch === ']') body += '\\]';
      else body += this.caseInsensitive ? caseFold(ch, true) : ch;
    }
    return `[${negated ? '^' : ''}${body}]`;
  }
}

/** A letter in a case-insensitive group: both cases (as class members when `inClass`). */
function caseFold(ch: string, inClass: boolean): string {
  const lower = ch.toLowerCase();
  const upper = ch.toUpperCase();
  if (lower === upper || [...lower].length !== 1 || [...upper].length !== 1) return ch;
  return inClass ? lower + upper : `[${lower}${upper}]`;
}
