/**
 * Translation and rewriting as generation: a few-shot prompt shows the model the pattern
 * ("English: … / French: …"), the user's text fills the last slot, and generation stops at the end of the
 * line (or where the next example would begin). GPT-2 was trained on English web text: its translation is
 * weak (say so in the UI); a model the user fine-tuned on parallel text in this same format does far better.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { generate } from '../generate/generate.js';
import type { GenerationOptions, GenerationResult, TokenEvent } from '../generate/types.js';
import type { LanguageModel } from '../model/types.js';
import type { Tokenizer } from '../tokenizer/types.js';

export const TEXT_SLOT = '{text}';

export interface PromptTemplate {
  id: string;
  name: string;
  kind: 'translate' | 'rewrite';
  /** The prompt, with `{text}` where the user's text goes (once). */
  prompt: string;
  /** Generation ends when the new text contains one of these; the output is cut before it. */
  stop: string[];
  /** Generation options the template suggests; the caller's override them. */
  generation?: GenerationOptions;
  /** Shown to the user beside the output (e.g. that GPT-2 translates poorly). */
  note?: string;
}

const WEAK_TRANSLATION =
  'GPT-2 learned little French: expect rough output. A model fine-tuned on English–French pairs in this format translates far better.';

export const BUILTIN_TEMPLATES: readonly PromptTemplate[] = [
  {
    id: 'translate-en-fr',
    name: 'Translate English → French',
    kind: 'translate',
    prompt:
      'English: Where is the train station?\nFrench: Où est la gare ?\n\n' +
      'English: I would like a cup of coffee, please.\nFrench: Je voudrais une tasse de café, s\'il vous plaît.\n\n' +
      'English: The weather is lovely today.\nFrench: Il fait très beau aujourd\'hui.\n\n' +
      'English: {text}\nFrench:',
    stop: ['\n', 'English:'],
    generation: { maxNewTokens: 64 },
    note: WEAK_TRANSLATION,
  },
  {
    id: 'translate-fr-en',
    name: 'Translate French → English',
    kind: 'translate',
    prompt:
      'French: Où est la gare ?\nEnglish: Where is the train station?\n\n' +
      'French: Je voudrais une tasse de café, s\'il vous plaît.\nEnglish: I would like a cup of coffee, please.\n\n' +
      'French: Il fait très beau aujourd\'hui.\nEnglish: The weather is lovely today.\n\n' +
      'French: {text}\nEnglish:',
    stop: ['\n', 'French:'],
    generation: { maxNewTokens: 64 },
    note: WEAK_TRANSLATION,
  },
  {
    id: 'formal',
    name: 'Rewrite more formally',
    kind: 'rewrite',
    prompt:
      'Rewrite more formally.\n\n' +
      'Informal: hey, can u send me the report asap?\nFormal: Could you please send me the report at your earliest convenience?\n\n' +
      'Informal: sorry, can\'t make it tomorrow.\nFormal: I regret that I will be unable to attend tomorrow.\n\n' +
      'Informal: thanks a ton for the help!\nFormal: Thank you very much for your assistance.\n\n' +
      'Informal: {text}\nFormal:',
    stop: ['\n', 'Informal:'],
    generation: { maxNewTokens: 64 },
  },
  {
    id: 'casual',
    name: 'Rewrite more casually',
    kind: 'rewrite',
    prompt:
      'Rewrite more casually.\n\n' +
      'Formal: Could you please send me the report at your earliest convenience?\nCasual: can you send me the report soon?\n\n' +
      'Formal: I regret that I will be unable to attend tomorrow.\nCasual: sorry, I can\'t make it tomorrow.\n\n' +
      'Formal: {text}\nCasual:',
    stop: ['\n', 'Formal:'],
    generation: { maxNewTokens: 64 },
  },
];

export class TemplateError extends Error {
  override name = 'TemplateError';
}

/** Checks a template (from a file, the app's store, or built in) and returns it with defaults filled in. */
export function validateTemplate(raw: unknown, where = 'the template'): PromptTemplate {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw new TemplateError(`${where} must be a JSON object`);
  const t = raw as Record<string, unknown>;
  if (typeof t.prompt !== 'string') throw new TemplateError(`${where} has no "prompt" string`);
  const slots = t.prompt.split(TEXT_SLOT).length - 1;
  if (slots !== 1) throw new TemplateError(`${where}: the prompt must hold ${TEXT_SLOT} exactly once, it holds it ${slots} times`);
  const stop = t.stop ?? ['\n'];
  if (!Array.isArray(stop) || stop.some((s) => typeof s !== 'string' || s === '')) {
    throw new TemplateError(`${where}: "stop" must be a list of non-empty strings`);
  }
  const kind = t.kind ?? 'rewrite';
  if (kind !== 'translate' && kind !== 'rewrite') throw new TemplateError(`${where}: "kind" must be "translate" or "rewrite"`);
  if (t.generation !== undefined && (typeof t.generation !== 'object' || t.generation === null)) {
    throw new TemplateError(`${where}: "generation" must be an object of generation options`);
  }
  return {
    id: typeof t.id === 'string' ? t.id : 'custom',
    name: typeof t.name === 'string' ? t.name : 'Custom template',
    kind,
    prompt: t.prompt,
    stop: stop as string[],
    generation: t.generation as GenerationOptions | undefined,
    note: typeof t.note === 'string' ? t.note : undefined,
  };
}

export function builtinTemplate(id: string): PromptTemplate | undefined {
  return BUILTIN_TEMPLATES.find((t) => t.id === id);
}

/**
 * A built-in template by id, or a template file: JSON (`{"prompt": "...{text}...", "stop": ["\n"]}`) or
 * plain text (the prompt itself; it stops at the end of the line).
 */
export async function resolveTemplate(idOrFile: string): Promise<PromptTemplate> {
  const builtin = builtinTemplate(idOrFile);
  if (builtin) return builtin;
  let content: string;
  try {
    content = await readFile(idOrFile, 'utf8');
  } catch {
    throw new TemplateError(`"${idOrFile}" is neither a built-in template (${BUILTIN_TEMPLATES.map((t) => t.id).join(', ')}) nor a readable file`);
  }
  if (idOrFile.toLowerCase().endsWith('.json')) {
    let raw: unknown;
    try {
      raw = JSON.parse(content);
    } catch (error) {
      throw new TemplateError(`${idOrFile}: not valid JSON (${(error as Error).message})`);
    }
    return validateTemplate(raw, idOrFile);
  }
  return validateTemplate({ id: path.basename(idOrFile), name: path.basename(idOrFile), prompt: content.replace(/\n$/, '') }, idOrFile);
}

/** The prompt with the user's text in its slot. The text is trimmed: a trailing newline would end the pattern. */
export function renderTemplate(template: PromptTemplate, text: string): string {
  const slots = template.prompt.split(TEXT_SLOT);
  if (slots.length !== 2) throw new TemplateError(`template "${template.id}" must hold ${TEXT_SLOT} exactly once`);
  return slots[0] + text.trim() + slots[1];
}

export interface RewriteResult extends GenerationResult {
  /** The first sequence's text without the space the pattern puts after "French:". */
  output: string;
  template: PromptTemplate;
}

/**
 * Runs a template on `text` with the same generation as completion; the template's stop strings are added
 * to any the caller gives, its suggested options are overridden by the caller's.
 */
export async function runTemplate(
  model: LanguageModel,
  tokenizer: Tokenizer,
  template: PromptTemplate,
  text: string,
  options: GenerationOptions = {},
  onToken?: (event: TokenEvent) => void,
): Promise<RewriteResult> {
  if (text.trim() === '') throw new TemplateError('there is no text to rewrite');
  const promptIds = tokenizer.encode(renderTemplate(template, text));
  const merged: GenerationOptions = { ...template.generation, ...options, stop: [...template.stop, ...(options.stop ?? [])] };
  const result = await generate(model, tokenizer, promptIds, merged, onToken);
  return { ...result, output: (result.sequences[0]?.text ?? '').trim(), template };
}
