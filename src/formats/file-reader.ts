// A buffered little-endian reader over positional fs.readSync, for parsing file headers without
// reading the (possibly huge) rest of the file. Reads past the end throw TruncatedFileError.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { ModelFileError, TruncatedFileError } from './errors.js';

const CHUNK_BYTES = 1 << 20;
const TWO_32 = 2 ** 32;

export class FileReader {
  readonly path: string;
  readonly size: number;
  /** Absolute position of the next read. */
  pos = 0;
  private fd: number;
  private buf: Buffer = Buffer.alloc(0);
  /** File position of buf[0]; buf holds file bytes [bufStart, bufStart + bufLen). */
  private bufStart = 0;
  private bufLen = 0;

  private constructor(path: string, fd: number, size: number) {
    this.path = path;
    this.fd = fd;
    this.size = size;
  }

  /** Opens a regular file for reading; a missing or unreadable file becomes a ModelFileError. */
  static open(path: string): FileReader {
    let fd: number;
    try {
      fd = openSync(path, 'r');
    } catch (err) {
      throw new ModelFileError(path, `cannot open: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { cause: err });
    }
    const stat = fstatSync(fd);
    if (!stat.isFile()) {
      closeSync(fd);
      throw new ModelFileError(path, 'not a regular file');
    }
    return new FileReader(path, fd, stat.size);
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }

  get remaining(): number {
    return this.size - this.pos;
  }

  /**
   * Makes the n bytes at pos available in the buffer and returns their index there.
   * `what` names the thing being read, for the truncation message.
   */
  private need(n: number, what: string): number {
    if (n > this.size - this.pos) {
      throw new TruncatedFileError(this.path,
        `file ends at byte ${this.size} while reading ${what} (${n} bytes at offset ${this.pos})`);
    }
    const end = this.pos + n;
    if (this.pos >= this.bufStart && end <= this.bufStart + this.bufLen) return this.pos - this.bufStart;
    const want = Math.min(Math.max(n, CHUNK_BYTES), this.size - this.pos);
    if (this.buf.length < want) this.buf = Buffer.allocUnsafe(want);
    let got = 0;
    while (got < want) {
      const r = readSync(this.fd, this.buf, got, want - got, this.pos + got);
      if (r === 0) break;
      got += r;
    }
    this.bufStart = this.pos;
    this.bufLen = got;
    if (got < n) throw new TruncatedFileError(this.path, `file shrank while reading ${what} at offset ${this.pos}`);
    return 0;
  }

  /** Makes n bytes available, advances past them, and returns their index in this.buf (read buf after calling). */
  private take(n: number, what: string): number {
    const i = this.need(n, what);
    this.pos += n;
    return i;
  }

  u8(what: string): number { const i = this.take(1, what); return this.buf[i]!; }
  i8(what: string): number { const i = this.take(1, what); return this.buf.readInt8(i); }
  u16(what: string): number { const i = this.take(2, what); return this.buf.readUInt16LE(i); }
  i16(what: string): number { const i = this.take(2, what); return this.buf.readInt16LE(i); }
  u32(what: string): number { const i = this.take(4, what); return this.buf.readUInt32LE(i); }
  i32(what: string): number { const i = this.take(4, what); return this.buf.readInt32LE(i); }
  f32(what: string): number { const i = this.take(4, what); return this.buf.readFloatLE(i); }
  f64(what: string): number { const i = this.take(8, what); return this.buf.readDoubleLE(i); }
  /** Unsigned 64-bit: a number when it is a safe integer, else a bigint. */
  u64(what: string): number | bigint {
    const i = this.take(8, what);
    const lo = this.buf.readUInt32LE(i);
    const hi = this.buf.readUInt32LE(i + 4);
    return hi < 0x200000 ? hi * TWO_32 + lo : this.buf.readBigUInt64LE(i);
  }
  /** Signed 64-bit: a number when it is a safe integer, else a bigint. */
  i64(what: string): number | bigint {
    const i = this.take(8, what);
    const lo = this.buf.readUInt32LE(i);
    const hi = this.buf.readInt32LE(i + 4);
    if (hi >= -0x200000 && hi < 0x200000) {
      const v = hi * TWO_32 + lo;
      if (Number.isSafeInteger(v)) return v;
    }
    return this.buf.readBigInt64LE(i);
  }
  /** n bytes decoded as UTF-8 (invalid sequences become U+FFFD). */
  utf8(n: number, what: string): string {
    const i = this.take(n, what);
    return this.buf.toString('utf8', i, i + n);
  }
  /** A copy of the next n bytes. */
  bytes(n: number, what: string): Uint8Array {
    const i = this.take(n, what);
    return Uint8Array.prototype.slice.call(this.buf, i, i + n);
  }
}
