// Seeded random text for the tokenizer's property tests: a failure prints its seed and string,
// and the same seed gives the same strings again.

/** mulberry32: a small, well-mixed 32-bit PRNG; returns floats in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PIECES: readonly string[] = [
  // English words and contractions, in both cases
  'the', ' the', 'The', ' quick', 'brown', ' fox', "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "N'T", "'",
  // whitespace runs, line endings, the characters where JavaScript's \s differs from GPT-2's
  ' ', '  ', '    ', '\t', '\n', '\n\n', '\r\n', '\r', '\u00a0', '\u2009', '\u3000', '\u2028', '\u0085', '\ufeff', '\u000b',
  // digits and punctuation
  '0', '42', ' 1999', '3.14', '٣', '½', '!', '?!', '...', '--', '"', '(', ')', '#', '@', '\\', '`', '{', '}',
  // CJK, Arabic, Greek, Cyrillic, Hindi
  '今天', '天气很好', '，', '。', '日本語', 'カタカナ', 'ひらがな', '한국어', 'مرحبا', 'Ελληνικά', 'Привет', 'नमस्ते',
  // combining marks, ligatures, zero-width characters, controls
  'e\u0301', 'a\u0308\u0304', '\u0301', 'ﬁ', '\u200b', '\u200d', '\u00ad', '\u0000', '\u007f',
  // emoji: plain, skin tone, ZWJ families, flags, keycaps, variation selectors
  '😀', '🎉', '👍🏽', '👨‍👩‍👧‍👦', '🏳️‍🌈', '🇯🇵', '🇺🇳', '1️⃣', '❤️', '🧑🏿‍🚀',
];

/** One well-formed code point drawn from the whole Unicode range (surrogate code points skipped). */
function randomCodePoint(random: () => number): string {
  const planes = [0x80, 0x800, 0x10000, 0x110000];
  const limit = planes[Math.floor(random() * planes.length)];
  for (;;) {
    const cp = Math.floor(random() * limit);
    if (cp < 0xd800 || cp > 0xdfff) return String.fromCodePoint(cp);
  }
}

/** A random well-formed string of up to `maxParts` pieces. */
export function randomText(random: () => number, maxParts = 24): string {
  const parts = Math.floor(random() * (maxParts + 1));
  let s = '';
  for (let i = 0; i < parts; i++) {
    s += random() < 0.8 ? PIECES[Math.floor(random() * PIECES.length)] : randomCodePoint(random);
  }
  return s;
}
