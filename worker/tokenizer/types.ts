export interface EncodeOptions {
  /** Treat `<|endoftext|>` (and other special tokens) in the text as special ids. Off by default: user text is text. */
  allowSpecial?: boolean;
}

export interface Tokenizer {
  readonly vocabSize: number;
  /** Id of `<|endoftext|>`, or null when the vocabulary has none. */
  readonly eosTokenId: number | null;
  encode(text: string, options?: EncodeOptions): number[];
  /** The exact text of `ids`; bytes that do not form whole characters become U+FFFD, as in Hugging Face. */
  decode(ids: readonly number[]): string;
  /** The raw bytes of one token (for streaming decoders that must not split a character). */
  tokenBytes(id: number): Uint8Array;
}
