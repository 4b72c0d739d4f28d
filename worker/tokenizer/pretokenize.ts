/**
 * GPT-2's pre-tokenizer: text is cut into pieces ("words") before BPE, and no token crosses a cut.
 *
 * The published pattern is
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * GPT-2 ran it with Python's `regex` module and tiktoken/HF tokenizers run it with Rust/Oniguruma
 * engines, where `\s` is the Unicode White_Space property. JavaScript's `\s` is a different set
 * (it lacks U+0085 NEXT LINE and adds U+FEFF BYTE ORDER MARK), so `\s` is spelled out as
 * \p{White_Space} here; otherwise text containing those two characters would split differently.
 * The contractions are case-sensitive, as in GPT-2 ("DON'T" → "DON", "'", "T").
 */
export const GPT2_PRETOKENIZE_SOURCE =
  "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\p{White_Space}\\p{L}\\p{N}]+" +
  '|\\p{White_Space}+(?!\\P{White_Space})|\\p{White_Space}+';

/** A fresh global regex (each caller owns its lastIndex). */
export function gpt2PretokenizeRegex(): RegExp {
  return new RegExp(GPT2_PRETOKENIZE_SOURCE, 'gu');
}

/** The pieces of `text`, for tests and tools; the encoder walks the regex itself to avoid the array. */
export function pretokenize(text: string): string[] {
  return text.match(gpt2PretokenizeRegex()) ?? [];
}
