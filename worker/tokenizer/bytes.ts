// Byte-level helpers shared by the BPE core and the vocabulary loaders.

/**
 * GPT-2's reversible byte → character table. vocab.json and merges.txt spell every token as a
 * string of these characters (one per byte) so that no token contains whitespace or control
 * characters: printable Latin-1 bytes stand for themselves, the other 68 bytes are shifted to
 * U+0100 and up (so the space byte 0x20 is written 'Ġ', the newline 0x0A 'Ċ').
 */
export const BYTE_TO_CHAR: readonly string[] = buildByteToChar();

/** Inverse of BYTE_TO_CHAR: code point → byte, or -1 for a character that stands for no byte. */
const CHAR_TO_BYTE: ReadonlyMap<number, number> = new Map(
  BYTE_TO_CHAR.map((ch, byte) => [ch.codePointAt(0)!, byte]),
);

function buildByteToChar(): string[] {
  const printable = (b: number) =>
    (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const table: string[] = new Array(256);
  let shifted = 0;
  for (let b = 0; b < 256; b++) {
    table[b] = String.fromCodePoint(printable(b) ? b : 256 + shifted++);
  }
  return table;
}

/** The bytes a byte-level token string stands for, or null if it holds a character outside the table. */
export function byteLevelToBytes(token: string): Uint8Array | null {
  const out = new Uint8Array(token.length);
  let n = 0;
  for (const ch of token) {
    const byte = CHAR_TO_BYTE.get(ch.codePointAt(0)!);
    if (byte === undefined) return null;
    out[n++] = byte;
  }
  return out.subarray(0, n);
}

export function bytesToByteLevel(bytes: Uint8Array): string {
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += BYTE_TO_CHAR[bytes[i]];
  return s;
}

/**
 * Writes the UTF-8 bytes of `text[start, end)` into `out` (which must hold 3 bytes per UTF-16 unit)
 * and returns the byte count. Written by hand rather than with TextEncoder.encodeInto because the
 * encoder calls this once per pre-token and a substring + encodeInto pair costs more than the loop.
 * A lone surrogate is written as U+FFFD, exactly as TextEncoder does: UTF-8 cannot carry it.
 */
export function utf8Encode(text: string, start: number, end: number, out: Uint8Array): number {
  let n = 0;
  for (let i = start; i < end; i++) {
    let c = text.charCodeAt(i);
    if (c < 0x80) {
      out[n++] = c;
      continue;
    }
    if (c < 0x800) {
      out[n++] = 0xc0 | (c >> 6);
      out[n++] = 0x80 | (c & 0x3f);
      continue;
    }
    if (c >= 0xd800 && c <= 0xdfff) {
      const next = i + 1 < end ? text.charCodeAt(i + 1) : 0;
      if (c <= 0xdbff && next >= 0xdc00 && next <= 0xdfff) {
        const cp = 0x10000 + ((c - 0xd800) << 10) + (next - 0xdc00);
        i++;
        out[n++] = 0xf0 | (cp >> 18);
        out[n++] = 0x80 | ((cp >> 12) & 0x3f);
        out[n++] = 0x80 | ((cp >> 6) & 0x3f);
        out[n++] = 0x80 | (cp & 0x3f);
        continue;
      }
      c = 0xfffd;
    }
    out[n++] = 0xe0 | (c >> 12);
    out[n++] = 0x80 | ((c >> 6) & 0x3f);
    out[n++] = 0x80 | (c & 0x3f);
  }
  return n;
}
