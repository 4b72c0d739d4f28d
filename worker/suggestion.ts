/**
 * Turning generated text into an inline suggestion: cut at the first line break or sentence end (when asked),
 * drop the trailing whitespace, and avoid a double space after a prefix that already ends in one.
 *
 * Streaming shows the suggestion while it grows, so shaping must be monotonic: the shaped text of a longer
 * generation always starts with the shaped text of a shorter one. `SuggestionStream` relies on that to emit
 * deltas that add up exactly to the final suggestion.
 */

export interface ShapeOptions {
  stopAtSentenceEnd: boolean;
  /** The document text before the cursor ends in a space or tab. */
  afterSpace: boolean;
}

export interface ShapedSuggestion {
  text: string;
  /** The suggestion ended (line break or sentence end): more tokens cannot change it. */
  ended: boolean;
}

// Words that end with a period without ending the sentence. Lower-case, without the period.
const ABBREVIATIONS = new Set([
  'mr', 'mrs', 'ms', 'dr', 'prof', 'sr', 'jr', 'st', 'mt', 'vs', 'etc', 'e.g', 'i.e', 'cf', 'al', 'fig',
  'no', 'vol', 'ch', 'p', 'pp', 'approx', 'dept', 'inc', 'ltd', 'co', 'corp', 'jan', 'feb', 'mar', 'apr',
  'jun', 'jul', 'aug', 'sep', 'sept', 'oct', 'nov', 'dec', 'gen', 'col', 'lt', 'sgt', 'capt', 'rev', 'hon',
]);

// A sentence ender, optional closing quotes/brackets, then whitespace that confirms the sentence is over.
const SENTENCE_END = /([.!?…]+)(["'”’)\]]*)(?=\s)/g;

/** Index just past the first sentence end in `text`, or -1. */
export function sentenceEndIndex(text: string): number {
  for (const match of text.matchAll(SENTENCE_END)) {
    const end = match.index! + match[0].length;
    if (match[1] === '.' && !endsSentence(text.slice(0, match.index))) continue;
    return end;
  }
  return -1;
}

/** Whether a period after `before` ends a sentence, rather than an abbreviation or an initial. */
function endsSentence(before: string): boolean {
  const word = /([\p{L}.]+)$/u.exec(before)?.[1];
  if (word === undefined) return true; // after a digit, a quote, or nothing: take it as an end
  if (ABBREVIATIONS.has(word.toLowerCase())) return false;
  // "J. K. Rowling", "U.S.": a single letter (possibly after other initials) is an initial.
  if (/(^|\.)\p{Lu}$/u.test(word)) return false;
  return true;
}

export function shapeSuggestion(raw: string, options: ShapeOptions): ShapedSuggestion {
  let text = raw;
  let ended = false;
  if (options.stopAtSentenceEnd) {
    const lineBreak = text.search(/[\r\n]/);
    if (lineBreak >= 0) {
      text = text.slice(0, lineBreak);
      ended = true;
    }
    const sentenceEnd = sentenceEndIndex(text);
    if (sentenceEnd >= 0) {
      text = text.slice(0, sentenceEnd);
      ended = true;
    }
  }
  if (options.afterSpace) text = text.replace(/^[ \t]+/, '');
  return { text: text.trimEnd(), ended };
}

/** Shapes one alternative as it streams; `update` returns the text to append to what was shown so far. */
export class SuggestionStream {
  private shown = '';
  private shaped: ShapedSuggestion = { text: '', ended: false };

  constructor(private readonly options: ShapeOptions) {}

  update(rawSoFar: string): string {
    if (this.shaped.ended) return '';
    this.shaped = shapeSuggestion(rawSoFar, this.options);
    // Shaping is monotonic, so this holds; the guard keeps a broken invariant from garbling the ghost text.
    if (!this.shaped.text.startsWith(this.shown)) return '';
    const delta = this.shaped.text.slice(this.shown.length);
    this.shown = this.shaped.text;
    return delta;
  }

  get ended(): boolean {
    return this.shaped.ended;
  }

  get text(): string {
    return this.shown;
  }
}
