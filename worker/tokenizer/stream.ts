import type { Tokenizer } from './types.js';

/**
 * Turns generated token ids into text one token at a time without ever emitting part of a
 * character: GPT-2 splits the UTF-8 bytes of many CJK characters and emoji across tokens.
 *
 * The byte bookkeeping is TextDecoder's streaming mode, which holds back an incomplete trailing
 * sequence, replaces bytes that can no longer form a character with U+FFFD at once, and is
 * defined so that the chunks concatenate to exactly the one-shot decode. Per token this costs
 * one small byte copy (tokenBytes) and the returned string.
 */
export class StreamingDecoder {
  // ignoreBOM keeps a leading U+FEFF as text, as Tokenizer.decode does.
  private decoder = new TextDecoder('utf-8', { ignoreBOM: true });

  constructor(private readonly tokenizer: Tokenizer) {}

  /** The whole characters completed by token `id` ('' while a character is still incomplete). */
  push(id: number): string {
    return this.decoder.decode(this.tokenizer.tokenBytes(id), { stream: true });
  }

  /** Ends the sequence: whatever is held back, an incomplete character becoming U+FFFD. */
  flush(): string {
    return this.decoder.decode();
  }

  /** Forgets held-back bytes, to start a new sequence. */
  reset(): void {
    this.decoder.decode();
  }
}
