/**
 * `inkling classify`: zero-shot classification (labels scored as continuations of a prompt template,
 * calibrated against the template with empty input), or with a trained classifier (--classifier DIR).
 */
import { readFile } from 'node:fs/promises';
import { initBackend } from '../../worker/backend.js';
import { DEFAULT_ZERO_SHOT_TEMPLATE, createZeroShotClassifier, loadClassifier } from '../../worker/classify/index.js';
import { loadModel } from '../../worker/model/load.js';
import { loadTokenizer } from '../../worker/tokenizer/index.js';
import { UsageError } from './args.js';
import { PROCESS_IO, runTask, type CliIo } from './task-io.js';

export const CLASSIFY_USAGE = `Usage: inkling classify --model DIR --labels a,b,c [--template T] (--text X | --file F.jsonl) [--json]
       inkling classify --classifier DIR (--text X | --file F.jsonl) [--json]

Zero-shot: each label is scored as the continuation of the template filled with the text, and the label
prior the model shows on the empty template is divided out (calibration).

  --template T     prompt with {text}; \\n in it is a newline (default ${JSON.stringify(DEFAULT_ZERO_SHOT_TEMPLATE)})
  --no-calibrate   keep the model's raw label preferences
  --file F         JSON Lines, one {"text": ...} per line (or a JSON string per line)
  --text-field F   the key holding the text in --file (default "text")
  --classifier DIR a classifier made by inkling train-classifier (it knows its labels; --model
                   overrides the base model folder it recorded)
  --json           one JSON object per text
  --backend auto|tensorflow|wasm|cpu`;

const OPTIONS = {
  model: { type: 'string' },
  labels: { type: 'string' },
  template: { type: 'string' },
  text: { type: 'string' },
  file: { type: 'string' },
  'text-field': { type: 'string' },
  'no-calibrate': { type: 'boolean' },
  classifier: { type: 'string' },
  json: { type: 'boolean' },
  backend: { type: 'string' },
} as const;

export function classifyCommand(args: string[], io: CliIo = PROCESS_IO): Promise<number> {
  return runTask('classify', CLASSIFY_USAGE, OPTIONS, args, io, async (values) => {
    if ((values.text === undefined) === (values.file === undefined)) throw new UsageError('classify needs exactly one of --text X or --file F.jsonl');
    const texts = values.text !== undefined ? [values.text] : await readTexts(values.file!, values['text-field'] ?? 'text');
    const print = (object: Record<string, unknown>, line: string) => io.stdout.write((values.json ? JSON.stringify(object) : line) + '\n');
    const short = (text: string) => JSON.stringify(text.length > 60 ? text.slice(0, 57) + '...' : text);

    if (values.classifier !== undefined) {
      if (values.labels !== undefined || values.template !== undefined || values['no-calibrate']) {
        throw new UsageError('--labels, --template and --no-calibrate are for zero-shot classification, not --classifier');
      }
      await initBackend(values.backend);
      const classifier = await loadClassifier(values.classifier, { modelDir: values.model });
      try {
        const results = await classifier.classify(texts);
        results.forEach((r, i) => print({ text: texts[i], ...r }, `${r.label}\t${r.probabilities[r.label].toFixed(3)}\t${short(texts[i])}`));
      } finally {
        classifier.dispose();
      }
      return 0;
    }

    if (values.model === undefined) throw new UsageError('classify needs --model DIR (or --classifier DIR)');
    if (values.labels === undefined) throw new UsageError('classify needs --labels a,b,c');
    const labels = values.labels.split(',').map((l) => l.trim());
    await initBackend(values.backend);
    const [model, tokenizer] = await Promise.all([loadModel(values.model), loadTokenizer(values.model)]);
    try {
      const classifier = await createZeroShotClassifier(model, tokenizer, {
        labels,
        template: values.template?.replace(/\\n/g, '\n'),
        calibrate: !values['no-calibrate'],
      }).catch((error: Error) => {
        throw new UsageError(error.message);
      });
      for (const text of texts) {
        const r = await classifier.classify(text);
        const chosen = r.scores.find((s) => s.label === r.label)!;
        print(
          { text, label: r.label, uncalibratedLabel: r.uncalibratedLabel, scores: r.scores, prior: classifier.prior },
          `${r.label}\t${chosen.calibratedProbability.toFixed(3)}\t${short(text)}`,
        );
      }
      return 0;
    } finally {
      model.dispose();
    }
  });
}

async function readTexts(file: string, field: string): Promise<string[]> {
  const content = await readFile(file, 'utf8').catch(() => {
    throw new UsageError(`--file ${file} cannot be read`);
  });
  const texts: string[] = [];
  content.split(/\r?\n/).forEach((line, i) => {
    if (line.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      throw new UsageError(`${file} line ${i + 1} is not JSON`);
    }
    const text = typeof value === 'string' ? value : (value as Record<string, unknown> | null)?.[field];
    if (typeof text !== 'string') throw new UsageError(`${file} line ${i + 1} has no "${field}" string`);
    texts.push(text);
  });
  if (texts.length === 0) throw new UsageError(`${file} holds no texts`);
  return texts;
}
