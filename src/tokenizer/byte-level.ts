// GPT-2's byte-level alphabet: every byte maps to one printable character, so byte-level BPE vocabularies are
// written as text. Printable Latin-1 bytes map to themselves; the other 68 take U+0100.. in byte order.

const byteToChar: string[] = new Array<string>(256);
const charCodeToByte = new Int16Array(0x180).fill(-1);

(function buildAlphabet(): void {
  let next = 256;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    const code = printable ? b : next++;
    byteToChar[b] = String.fromCharCode(code);
    charCodeToByte[code] = b;
  }
})();

/** The alphabet character standing for byte `b` (0..255). */
export function byteChar(b: number): string {
  return byteToChar[b]!;
}

/** The byte an alphabet character stands for, or -1 when the character is not in the alphabet. */
export function charByte(code: number): number {
  return code < charCodeToByte.length ? charCodeToByte[code]! : -1;
}

/** Writes the bytes as alphabet characters ("Ġhello" for " hello"). */
export function bytesToAlphabet(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += byteToChar[bytes[i]!]!;
  return s;
}

/**
 * The bytes a byte-level token stands for. A token with a character outside the alphabet (an added token such
 * as "<｜User｜>") stands for its own UTF-8 bytes, as Hugging Face's ByteLevel decoder does.
 */
export function alphabetToBytes(token: string): Uint8Array {
  const out = new Uint8Array(token.length);
  for (let i = 0; i < token.length; i++) {
    const b = charByte(token.charCodeAt(i));
    if (b < 0) return utf8.encode(token);
    out[i] = b;
  }
  return out;
}

/** alphabetToBytes(token).length, without making the bytes. */
export function alphabetByteLength(token: string): number {
  for (let i = 0; i < token.length; i++) if (charByte(token.charCodeAt(i)) < 0) return Buffer.byteLength(token, 'utf8');
  return token.length;
}

/** The parts one after the other in one array. */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  let length = 0;
  for (const p of parts) length += p.length;
  const out = new Uint8Array(length);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

export const utf8 = new TextEncoder();
/** Lossy: invalid sequences become U+FFFD (one per maximal invalid subpart, like Rust's from_utf8_lossy). */
export const utf8Lossy = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
