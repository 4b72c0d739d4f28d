/**
 * `inkling` — the engine from the command line. Every command calls the same library functions the app's
 * worker uses. Errors print one readable line to stderr (the stack only with --verbose) and exit non-zero.
 */
import { readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { UsageError, parseFloatOption, parseIdList, parseIntOption } from './args.js';
import { COMMANDS, type Command } from './commands.js';
import { finetuneCommand } from './finetune.js';
import { classifyCommand } from './classify.js';
import { trainClassifierCommand } from './train-classifier.js';
import { scoreCommand } from './score.js';
import { rewriteCommand } from './rewrite.js';
import { evalCommand } from './eval.js';
import { importCommand } from './import.js';
import { downloadCommand } from './download.js';

/** Commands with many options of their own parse their arguments themselves (each has --help). */
const SELF_PARSING: Record<string, (args: string[]) => Promise<number>> = {
  finetune: finetuneCommand,
  classify: classifyCommand,
  'train-classifier': trainClassifierCommand,
  score: scoreCommand,
  rewrite: rewriteCommand,
  eval: evalCommand,
  import: importCommand,
  download: downloadCommand,
};

const USAGE = `Usage: inkling <command> [options]

Commands:
  generate   --model DIR (--prompt TEXT | --prompt-ids 1,2,3) [--max-length N | --max-new-tokens N]
             [--min-new-tokens N] [--num-return-sequences K] [--do-sample] [--temperature T] [--top-k K]
             [--top-p P] [--repetition-penalty R] [--no-repeat-ngram-size N] [--seed S] [--stop STR]...
             [--backend auto|tensorflow|wasm|cpu] [--threads N] [--precision exact|fast] [--json]
  tokenize   (TEXT | --file F) [--model DIR] [--json]      ("--" ends the options)
  detokenize 1,2,3 [--model DIR]                           prints the exact text, nothing added
  logits     --model DIR --prompt-ids 1,2,3 --json         the full logits row of the last position
             [--threads N] [--precision exact|fast]
  finetune   --model DIR --data FILE_OR_DIR [--method lora|full] [--epochs N] [--lr X] [--out DIR]
             [--resume] [--json]
  eval       --model DIR --file F [--precision exact|fast] [--json]   tokens, loss, perplexity, bits per byte
  score      --model DIR --context TEXT --candidates 'a|b|c' [--json]
  classify   --model DIR --labels a,b,c [--template T] (--text X | --file F.jsonl) [--json]
  train-classifier --model DIR --data F.csv|F.jsonl [--method head|lora] [--out DIR] [--json]
  rewrite    --model DIR --template translate-en-fr|formal|FILE --text X [generation options] [--json]
  import     SOURCE [--data-dir DIR] [--activate]          check a Hugging Face GPT-2 checkpoint and add it to
             the app's models (as its Import does); --to DIR only copies it
  download   gpt2|gpt2-medium|gpt2-large|gpt2-xl [--data-dir DIR] [--activate]   fetch GPT-2 from the
             Hugging Face hub and add it to the app's models (as its Download does); --to DIR only fetches
             (each of these has its own --help)

--threads N: 1, or 2 to share the decode step's matrix products with a second thread (wasm backend;
default INKLING_THREADS, else 2 on a machine with two cores for models large enough to gain; eval: 1).
--precision exact|fast: float32 weights, or int8 ones (a scale per 32) for steps of at most 4 new tokens,
about 2× faster decoding; prompts stay float32 (default INKLING_PRECISION, else exact). logits runs the
prompt 4 tokens at a time with fast, eval scores through those steps (see eval --help).
Common: --verbose (stack traces), --help`;

const OPTIONS = {
  model: { type: 'string' },
  prompt: { type: 'string' },
  'prompt-ids': { type: 'string' },
  'max-length': { type: 'string' },
  'max-new-tokens': { type: 'string' },
  'min-new-tokens': { type: 'string' },
  'num-return-sequences': { type: 'string' },
  'do-sample': { type: 'boolean' },
  temperature: { type: 'string' },
  'top-k': { type: 'string' },
  'top-p': { type: 'string' },
  'repetition-penalty': { type: 'string' },
  'no-repeat-ngram-size': { type: 'string' },
  seed: { type: 'string' },
  stop: { type: 'string', multiple: true },
  backend: { type: 'string' },
  threads: { type: 'string' },
  precision: { type: 'string' },
  file: { type: 'string' },
  json: { type: 'boolean' },
  verbose: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} satisfies ParseArgsConfig['options'];

export type CliValues = ReturnType<typeof parse>['values'];

function parse(argv: string[]) {
  return parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true });
}

/** Options parsed and checked once, so every command sees typed values. */
export interface CliInput {
  command: Command;
  positionals: string[];
  values: CliValues;
  ints: (name: keyof typeof OPTIONS, min?: number) => number | undefined;
  floats: (name: keyof typeof OPTIONS) => number | undefined;
  ids: (name: keyof typeof OPTIONS) => number[] | undefined;
  readText: () => string;
}

export async function main(argv: string[]): Promise<number> {
  const selfParsing = argv[0] === undefined ? undefined : SELF_PARSING[argv[0]];
  if (selfParsing) return selfParsing(argv.slice(1));
  let verbose = argv.includes('--verbose');
  try {
    const { values, positionals } = (() => {
      try {
        return parse(argv);
      } catch (err) {
        throw new UsageError((err as Error).message);
      }
    })();
    verbose = values.verbose === true;
    const [name, ...rest] = positionals;
    if (values.help || name === undefined || name === 'help') {
      process.stdout.write(USAGE + '\n');
      return name === undefined && !values.help ? 2 : 0;
    }
    const command = COMMANDS[name as keyof typeof COMMANDS];
    if (!command) throw new UsageError(`unknown command "${name}" (try --help)`);
    const str = (n: keyof typeof OPTIONS) => values[n] as string | undefined;
    const input: CliInput = {
      command: name as Command,
      positionals: rest,
      values,
      ints: (n, min) => parseIntOption(n, str(n), min),
      floats: (n) => parseFloatOption(n, str(n)),
      ids: (n) => (str(n) === undefined ? undefined : parseIdList(`--${n}`, str(n)!)),
      readText: () => {
        if (values.file !== undefined) return readFileSync(values.file, 'utf8');
        if (rest.length === 0) throw new UsageError(`${name} needs a TEXT argument or --file F`);
        return rest.join(' ');
      },
    };
    await command(input);
    return 0;
  } catch (err) {
    const e = err as Error;
    if (verbose && e.stack) process.stderr.write(e.stack + '\n');
    else process.stderr.write(`inkling: ${e.message.split('\n')[0]}\n`);
    return err instanceof UsageError ? 2 : 1;
  }
}
