/**
 * Text rules for inline suggestions: where a suggestion makes sense, what part of the document the engine
 * sees, and how a raw model continuation is tidied before it is shown as ghost text. Pure functions, so
 * they are unit-tested without a DOM.
 */

/** How much text before the caret is worth sending: GPT-2 sees at most 1024 tokens (about 4–5 KB). */
export const MAX_PREFIX_CHARS = 16_384;
/**
 * The prefix start moves in steps of this many characters, so that while the user types the engine gets
 * the same beginning again and again and can reuse its cached keys/values.
 */
export const PREFIX_ALIGN_CHARS = 4_096;
/** How much text before the caret the clean-up rules look at. */
export const CONTEXT_TAIL_CHARS = 200;

const HORIZONTAL_SPACE = /^[ \t\u00a0\u3000]+/;
const ENDS_WITH_SPACE = /[ \t\u00a0\u3000\n]$/;
/** A word character in any script; a suggestion starting inside a word is judged with these. */
const WORD_CHAR = /[\p{L}\p{N}\p{M}_'’-]/u;

/**
 * Whether a suggestion at `caret` makes sense: the document has something to continue, and nothing but
 * spaces follows the caret on its line. Ghost text is drawn over the page, so anywhere else it would
 * cover the rest of the line.
 */
export function isCompletionPoint(text: string, caret: number): boolean {
  if (caret <= 0 || caret > text.length) return false;
  if (!/^[ \t\r]*(?:\n|$)/.test(text.slice(caret, caret + 256))) return false;
  return hasTextBefore(text, caret);
}

/** Something other than whitespace comes shortly before the caret. */
export function hasTextBefore(text: string, caret: number): boolean {
  return /\S/.test(text.slice(Math.max(0, caret - CONTEXT_TAIL_CHARS), caret));
}

/**
 * The start of the text sent as the prompt for a caret at `caret`: at most MAX_PREFIX_CHARS back, aligned to
 * PREFIX_ALIGN_CHARS so it stays put while typing, and moved past the next space so it starts on a word.
 */
export function promptStart(text: string, caret: number): number {
  if (caret <= MAX_PREFIX_CHARS) return 0;
  const aligned = Math.ceil((caret - MAX_PREFIX_CHARS) / PREFIX_ALIGN_CHARS) * PREFIX_ALIGN_CHARS;
  const window = text.slice(aligned, Math.min(caret, aligned + 64));
  const space = window.search(/\s/);
  return space >= 0 ? aligned + space + 1 : aligned;
}

export function promptPrefix(text: string, caret: number): string {
  return text.slice(promptStart(text, caret), caret);
}

export interface CleanOptions {
  /** Cut at the first sentence end or line break. */
  stopAtSentenceEnd: boolean;
  /** The stream has finished: nothing more will be appended to `raw`. */
  final: boolean;
}

/**
 * Turns a raw continuation into the text to show after `before` (the text just before the caret):
 * no leading spaces after a space, no repeat of the words just written ("the " + "the cat"), cut at a
 * sentence end or line break when asked, and "" when nothing worth showing is left.
 *
 * While a stream is still running (`final` false) the result only grows as `raw` grows, so ghost text
 * never jumps; a start that might still turn out to be a repeat is held back until it is decided.
 */
export function cleanSuggestion(raw: string, before: string, options: CleanOptions): string {
  let text = raw.replace(/\r\n?/g, '\n');
  const atLineStart = before === '' || before.endsWith('\n');
  if (atLineStart || ENDS_WITH_SPACE.test(before)) text = text.replace(HORIZONTAL_SPACE, '');

  const repeat = repeatedLead(text, before, options.final);
  if (repeat === undefined) return '';
  if (repeat > 0) {
    text = text.slice(repeat);
    if (ENDS_WITH_SPACE.test(before)) text = text.replace(HORIZONTAL_SPACE, '');
  }

  if (options.stopAtSentenceEnd) text = cutAtSentenceEnd(text);
  return text.trim() === '' ? '' : text;
}

/**
 * How many leading characters of `text` repeat the last words of `before` (0 if none), or undefined when
 * that cannot be decided yet because the stream is still running.
 */
function repeatedLead(text: string, before: string, final: boolean): number | undefined {
  const tail = before.slice(-CONTEXT_TAIL_CHARS).trimEnd();
  if (tail === '') return 0;
  // Candidate repeats: the last one to six words of `before`, longest first.
  const starts: number[] = [];
  const wordStart = /(?:^|\s)(?=\S)/g;
  for (let m = wordStart.exec(tail); m !== null; m = wordStart.exec(tail)) {
    starts.push(m.index + (m[0].length > 0 ? 1 : 0));
    if (m[0].length === 0) wordStart.lastIndex++;
  }
  const lead = text.replace(HORIZONTAL_SPACE, '');
  const skipped = text.length - lead.length;
  // Longest first, and an undecided longer repeat holds everything back, so that the result only ever
  // grows while the stream runs.
  for (const start of starts.slice(-6)) {
    const words = tail.slice(start);
    if (lead.startsWith(words)) {
      const after = lead.charAt(words.length);
      if (after === '' && !final) return undefined;
      if (after === '' || !WORD_CHAR.test(after)) return skipped + words.length;
    } else if (!final && words.startsWith(lead)) {
      return undefined;
    }
  }
  return 0;
}

/**
 * Cuts after the first sentence end ('.', '!', '?', '…' and CJK full stops, with any closing quotes or
 * brackets) that is followed by a space or the end, or before the first line break.
 */
export function cutAtSentenceEnd(text: string): string {
  const lineBreak = text.indexOf('\n');
  const line = lineBreak >= 0 ? text.slice(0, lineBreak) : text;
  const end = /[.!?…][)"'’”\]]*(?=\s|$)|[。！？][)"'’”」』\]]*/u.exec(line);
  return end ? line.slice(0, end.index + end[0].length) : line;
}

const wordSegmenter = new Intl.Segmenter(undefined, { granularity: 'word' });

/**
 * The length of the next word of `text` for word-by-word accept: leading spaces, one word (a word in any
 * script, so CJK text goes a word at a time too) and the punctuation glued to it.
 */
export function nextWordLength(text: string): number {
  const spaces = /^\s*/.exec(text)?.[0].length ?? 0;
  let end = spaces;
  let sawWord = false;
  for (const segment of wordSegmenter.segment(text.slice(spaces))) {
    const isSpace = /^\s+$/.test(segment.segment);
    if (isSpace) break;
    if (segment.isWordLike) {
      if (sawWord) break;
      sawWord = true;
    }
    end += segment.segment.length;
  }
  return end;
}
