/**
 * `inkling eval`: how well a model predicts a text — token count, mean loss, perplexity and bits per byte,
 * the numbers the default model's card quotes (worker/eval explains the windowing).
 */
import { readFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { initBackend } from '../../worker/backend.js';
import { evaluateText, evaluateTextStepwise } from '../../worker/eval/index.js';
import { loadModel } from '../../worker/model/load.js';
import { wantedPrecision } from '../../worker/model/parallel/decode-products.js';
import { loadTokenizer } from '../../worker/tokenizer/index.js';
import { paramMapOf } from '../../worker/train/params.js';
import { defaultModelDir } from '../paths.js';
import { UsageError, parseIntOption, parsePrecisionOption } from './args.js';
import { PROCESS_IO, type CliIo } from './task-io.js';

export const EVAL_USAGE = `Usage: inkling eval --model DIR --file F [--precision exact|fast] [--json]

Scores the text of F with the model: tokens, mean loss (nats/token), perplexity, bits per byte.
Texts longer than the context are scored in sliding windows; each token is scored once.

  --model DIR        a GPT-2 folder (default: the embedded default model)
  --file F           a UTF-8 text file
  --context N        input tokens per window (default: the model's context)
  --stride N         tokens between windows (default: half the context; = --context for plain blocks)
  --batch-size N     windows per forward pass (default: what fits 64 MB of logits; exact only)
  --json             one JSON object instead of text
  --backend auto|tensorflow|wasm|cpu
  --precision P      exact or fast (default: INKLING_PRECISION, else exact). exact scores whole windows in
                     float32; fast scores the int8 weights suggestions decode with, through the decode step
                     4 tokens at a time (it measures their loss, not their speed)
  --threads N        threads the model is loaded with (default 1): a second one serves only the decode
                     step, i.e. only --precision fast here`;

const OPTIONS = {
  model: { type: 'string' },
  file: { type: 'string' },
  context: { type: 'string' },
  stride: { type: 'string' },
  'batch-size': { type: 'string' },
  json: { type: 'boolean' },
  backend: { type: 'string' },
  threads: { type: 'string' },
  precision: { type: 'string' },
  verbose: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Kept as a name of its own for callers; the shape is every command's. */
export type EvalIo = CliIo;

export async function evalCommand(args: string[], io: EvalIo = PROCESS_IO): Promise<number> {
  const verbose = args.includes('--verbose');
  try {
    let values;
    try {
      values = parseArgs({ args, options: OPTIONS, allowPositionals: false, strict: true }).values;
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
    if (values.help) {
      io.stdout.write(EVAL_USAGE + '\n');
      return 0;
    }
    if (values.file === undefined) throw new UsageError('eval needs --file F (the text to score)');
    const dir = values.model ?? defaultModelDir();
    if (dir === null) throw new UsageError('no model given and no default model is installed: pass --model DIR');
    const text = await readFile(values.file, 'utf8').catch((error: NodeJS.ErrnoException) => {
      throw new UsageError(`--file ${values.file}: ${error.code === 'ENOENT' ? 'no such file' : error.message}`);
    });
    if (text.length === 0) throw new UsageError(`--file ${values.file} is empty: there is nothing to score`);
    const contextLength = parseIntOption('context', values.context, 1);
    const stride = parseIntOption('stride', values.stride, 1);
    const batchSize = parseIntOption('batch-size', values['batch-size'], 1);
    // Exact scoring runs the whole-window forward pass (worker/eval) on this thread, never the decode step
    // that a second thread shares, so by default no partner is started (it would hold half the weights).
    const threads = parseIntOption('threads', values.threads, 1);
    const asked = parsePrecisionOption(values.precision) ?? wantedPrecision();
    if (asked === 'fast' && batchSize !== undefined) {
      throw new UsageError('--batch-size applies to exact scoring only: fast scores one window at a time, 4 tokens per step');
    }

    const backend = await initBackend(values.backend);
    const [model, tokenizer] = await Promise.all([loadModel(dir, { threads: threads ?? 1, precision: asked }), loadTokenizer(dir)]);
    try {
      const started = performance.now();
      // The int8 weights serve only the decode step (at most 4 new tokens per call): score through it. A
      // model that could not take them (model.precisionNote says why) is scored exact, as it then runs.
      const result =
        model.precision === 'fast'
          ? await evaluateTextStepwise(model, tokenizer, text, { contextLength, stride })
          : await evaluateText(paramMapOf(model.params), model.config, tokenizer, text, { contextLength, stride, batchSize });
      const seconds = (performance.now() - started) / 1000;
      const precision = { precision: model.precision, precisionNote: model.precisionNote };
      if (values.json) {
        io.stdout.write(JSON.stringify({ model: dir, file: values.file, backend: backend.name, ...precision, ...result, seconds }) + '\n');
      } else {
        io.stdout.write(
          [
            `tokens:        ${result.tokens} (${result.scoredTokens} scored, ${result.bytes} bytes, ${(result.bytes / Math.max(1, result.tokens)).toFixed(2)} bytes/token)`,
            `mean loss:     ${result.meanLoss.toFixed(4)} nats/token`,
            `perplexity:    ${result.perplexity.toFixed(2)}`,
            `bits per byte: ${result.bitsPerByte.toFixed(4)}`,
            `windows:       ${result.windows} of ${result.contextLength} tokens, stride ${result.stride} (${seconds.toFixed(1)} s on ${backend.name})`,
            `precision:     ${model.precision}${model.precisionNote ? ` (not fast: ${model.precisionNote})` : ''}`,
          ].join('\n') + '\n',
        );
      }
      return 0;
    } finally {
      model.dispose();
    }
  } catch (error) {
    const e = error as Error;
    if (verbose && e.stack) io.stderr.write(e.stack + '\n');
    else io.stderr.write(`inkling eval: ${e.message.split('\n')[0]}\n`);
    return error instanceof UsageError ? 2 : 1;
  }
}
