/** `inkling rewrite`: a few-shot template (translate, rewrite) run on a text with the usual generation options. */
import { initBackend } from '../../worker/backend.js';
import type { GenerationOptions } from '../../worker/generate/types.js';
import { loadModel } from '../../worker/model/load.js';
import { BUILTIN_TEMPLATES, resolveTemplate, runTemplate } from '../../worker/rewrite/index.js';
import { loadTokenizer } from '../../worker/tokenizer/index.js';
import { UsageError, parseFloatOption, parseIntOption } from './args.js';
import { PROCESS_IO, required, runTask, type CliIo } from './task-io.js';

export const REWRITE_USAGE = `Usage: inkling rewrite --model DIR --template ID|FILE --text X [generation options] [--json]

Templates: ${BUILTIN_TEMPLATES.map((t) => t.id).join(', ')}, or a file: JSON {"prompt": "...{text}...",
"stop": ["\\n"]} or plain text holding {text} (it stops at the end of the line).

  --max-new-tokens N  --min-new-tokens N  --do-sample  --temperature T  --top-k K  --top-p P
  --repetition-penalty R  --no-repeat-ngram-size N  --seed S  --stop STR (more stop strings)
  --backend auto|tensorflow|wasm|cpu`;

const OPTIONS = {
  model: { type: 'string' },
  template: { type: 'string' },
  text: { type: 'string' },
  'max-new-tokens': { type: 'string' },
  'min-new-tokens': { type: 'string' },
  'do-sample': { type: 'boolean' },
  temperature: { type: 'string' },
  'top-k': { type: 'string' },
  'top-p': { type: 'string' },
  'repetition-penalty': { type: 'string' },
  'no-repeat-ngram-size': { type: 'string' },
  seed: { type: 'string' },
  stop: { type: 'string', multiple: true },
  json: { type: 'boolean' },
  backend: { type: 'string' },
} as const;

export function rewriteCommand(args: string[], io: CliIo = PROCESS_IO): Promise<number> {
  return runTask('rewrite', REWRITE_USAGE, OPTIONS, args, io, async (values) => {
    const dir = required(values.model, 'rewrite needs --model DIR');
    const templateName = required(values.template, `rewrite needs --template (${BUILTIN_TEMPLATES.map((t) => t.id).join(', ')} or a file)`);
    const text = required(values.text, 'rewrite needs --text X');
    const options: GenerationOptions = {
      maxNewTokens: parseIntOption('max-new-tokens', values['max-new-tokens'], 1),
      minNewTokens: parseIntOption('min-new-tokens', values['min-new-tokens'], 0),
      doSample: values['do-sample'] === true ? true : undefined,
      temperature: parseFloatOption('temperature', values.temperature),
      topK: parseIntOption('top-k', values['top-k'], 0),
      topP: parseFloatOption('top-p', values['top-p']),
      repetitionPenalty: parseFloatOption('repetition-penalty', values['repetition-penalty']),
      noRepeatNgramSize: parseIntOption('no-repeat-ngram-size', values['no-repeat-ngram-size'], 0),
      seed: parseIntOption('seed', values.seed, 0),
      stop: values.stop,
      signal: io.signal,
    };
    for (const key of Object.keys(options) as (keyof GenerationOptions)[]) if (options[key] === undefined) delete options[key];
    const template = await resolveTemplate(templateName).catch((error: Error) => {
      throw new UsageError(error.message);
    });
    await initBackend(values.backend);
    const [model, tokenizer] = await Promise.all([loadModel(dir), loadTokenizer(dir)]);
    try {
      // Plain text streams as it is made (the stream never shows a stop string); --json prints at the end.
      const result = await runTemplate(model, tokenizer, template, text, options, values.json ? undefined : (e) => io.stdout.write(e.textDelta));
      if (values.json) {
        const [first] = result.sequences;
        const out = { template: template.id, output: result.output, finishReason: first.finishReason, ids: first.ids, note: template.note ?? null };
        io.stdout.write(JSON.stringify(out) + '\n');
      } else {
        io.stdout.write('\n');
        if (template.note) io.stderr.write(`note: ${template.note}\n`);
      }
      return 0;
    } finally {
      model.dispose();
    }
  });
}
