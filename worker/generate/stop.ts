/**
 * The text of one generated sequence as it streams: decoded text so far, how much of it has been shown,
 * and where a stop string cuts it. Text that might be the start of a stop string is held back until the
 * next tokens settle it, so the stream never shows any part of a stop string.
 */

/** A decoder that turns token ids into text without ever splitting a character. */
export interface TextStreamDecoder {
  push(id: number): string;
  flush(): string;
}

export class SequenceText {
  /** Decoded text so far (never past a stop string once one is found). */
  text = '';
  /** Characters of `text` already handed to the stream. */
  private shown = 0;
  private readonly longestStop: number;
  /** Matches must end after this offset to count (text made before `minNewTokens` is exempt). */
  private countFrom = -1;

  constructor(
    private readonly decoder: TextStreamDecoder,
    private readonly stops: readonly string[],
  ) {
    this.longestStop = stops.reduce((m, s) => Math.max(m, s.length), 0);
  }

  /** The text handed to the stream so far. */
  get shownText(): string {
    return this.text.slice(0, this.shown);
  }

  /**
   * Adds one token's text. `stopsCount` says whether stop strings completed by this token end the
   * sequence (false while fewer than `minNewTokens` tokens exist). Returns true when a stop string ended
   * it; `text` is then cut before the stop string.
   */
  push(id: number, stopsCount: boolean): boolean {
    const before = this.text.length;
    this.text += this.decoder.push(id);
    return this.findStop(before, stopsCount);
  }

  /** Flushes bytes the decoder still holds (they become U+FFFD) at the end of the sequence. */
  finish(stopsCount: boolean): boolean {
    const before = this.text.length;
    this.text += this.decoder.flush();
    return this.findStop(before, stopsCount);
  }

  /**
   * The text that is safe to show now and was not shown before. While the sequence runs, a tail that is
   * the beginning of a stop string is held back; at the end (`final`) everything is released.
   */
  takeDelta(final: boolean): string {
    const end = final ? this.text.length : this.text.length - this.heldBack();
    if (end <= this.shown) return '';
    const delta = this.text.slice(this.shown, end);
    this.shown = end;
    return delta;
  }

  private findStop(before: number, stopsCount: boolean): boolean {
    if (this.stops.length === 0) return false;
    if (!stopsCount) {
      this.countFrom = this.text.length;
      return false;
    }
    // Only matches ending in the new text can be new; a match may start up to longestStop − 1 earlier.
    const searchFrom = Math.max(0, before - this.longestStop + 1);
    let cut = -1;
    for (const stop of this.stops) {
      let at = this.text.indexOf(stop, searchFrom);
      while (at !== -1 && at + stop.length <= this.countFrom) at = this.text.indexOf(stop, at + 1);
      if (at !== -1 && (cut === -1 || at < cut)) cut = at;
    }
    if (cut === -1) return false;
    this.text = this.text.slice(0, cut);
    return true;
  }

  /** Length of the longest tail of the unshown text that is a proper prefix of some stop string. */
  private heldBack(): number {
    const text = this.text;
    const available = text.length - this.shown;
    let held = 0;
    for (const stop of this.stops) {
      for (let n = Math.min(stop.length - 1, available); n > held; n--) {
        if (endsWithPrefix(text, stop, n)) {
          held = n;
          break;
        }
      }
    }
    return held;
  }
}

/** Whether `text` ends with the first `n` characters of `stop` (compared in place, no substrings). */
function endsWithPrefix(text: string, stop: string, n: number): boolean {
  const offset = text.length - n;
  for (let i = 0; i < n; i++) if (text.charCodeAt(offset + i) !== stop.charCodeAt(i)) return false;
  return true;
}
