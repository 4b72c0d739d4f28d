/** `inkling score`: log P(candidate | context) for each candidate, per token and in total. */
import { initBackend } from '../../worker/backend.js';
import { loadModel } from '../../worker/model/load.js';
import { scoreTexts } from '../../worker/score/index.js';
import { loadTokenizer } from '../../worker/tokenizer/index.js';
import { UsageError } from './args.js';
import { PROCESS_IO, required, runTask, type CliIo } from './task-io.js';

export const SCORE_USAGE = `Usage: inkling score --model DIR --context TEXT --candidates 'a|b|c' [--json]

Prints the log-probability (natural log) of each candidate as a continuation of the context, the context
run once for all of them. Put a candidate's leading space in it (" positive"), as GPT-2 tokenizes words.

  --separator S   what splits --candidates (default "|")
  --backend auto|tensorflow|wasm|cpu`;

const OPTIONS = {
  model: { type: 'string' },
  context: { type: 'string' },
  candidates: { type: 'string' },
  separator: { type: 'string' },
  json: { type: 'boolean' },
  backend: { type: 'string' },
} as const;

export function scoreCommand(args: string[], io: CliIo = PROCESS_IO): Promise<number> {
  return runTask('score', SCORE_USAGE, OPTIONS, args, io, async (values) => {
    const dir = required(values.model, 'score needs --model DIR');
    const context = required(values.context, 'score needs --context TEXT');
    const candidates = required(values.candidates, "score needs --candidates 'a|b|c'").split(values.separator ?? '|');
    if (candidates.some((c) => c === '')) throw new UsageError('--candidates has an empty candidate');
    await initBackend(values.backend);
    const [model, tokenizer] = await Promise.all([loadModel(dir), loadTokenizer(dir)]);
    try {
      const result = await scoreTexts(model, tokenizer, context, candidates);
      if (values.json) {
        const out = {
          contextTokens: result.contextTokens,
          truncatedContextTokens: result.truncatedContextTokens,
          candidates: result.scores.map((s, i) => ({ text: candidates[i], tokens: s.tokens, tokenLogProbs: s.tokenLogProbs, logProb: s.logProb })),
        };
        io.stdout.write(JSON.stringify(out) + '\n');
      } else {
        if (result.truncatedContextTokens > 0) io.stderr.write(`the context was cut to its last ${result.contextTokens} tokens\n`);
        result.scores.forEach((s, i) => io.stdout.write(`${s.logProb.toFixed(4)}\t${JSON.stringify(candidates[i])}\n`));
      }
      return 0;
    } finally {
      model.dispose();
    }
  });
}
