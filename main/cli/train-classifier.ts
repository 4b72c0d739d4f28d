/**
 * `inkling train-classifier`: trains a classification head (alone, or with LoRA adapters) on a CSV/JSONL
 * of labelled texts, reports accuracy and a confusion matrix on a held-out split, and saves the classifier
 * folder that `inkling classify --classifier DIR` loads.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { initBackend } from '../../worker/backend.js';
import {
  formatOfFile,
  labelsOf,
  parseLabelledData,
  saveClassifier,
  splitHeldOut,
  trainClassifier,
  type ClassifierEvaluation,
  type ClassifierTrainingOptions,
} from '../../worker/classify/index.js';
import { loadModel } from '../../worker/model/load.js';
import { loadTokenizer } from '../../worker/tokenizer/index.js';
import { paramMapOf } from '../../worker/train/params.js';
import { UsageError, parseFloatOption, parseIntOption } from './args.js';
import { PROCESS_IO, required, runTask, type CliIo } from './task-io.js';

export const TRAIN_CLASSIFIER_USAGE = `Usage: inkling train-classifier --model DIR --data F.csv|F.jsonl [options]

Trains a classifier on the last token's hidden state of the model (as GPT2ForSequenceClassification),
reports accuracy and a confusion matrix on a held-out split, and writes the classifier to OUT.

  --text-field F     column / key of the text (default "text")
  --label-field F    column / key of the label (default "label")
  --method head|lora the head alone on frozen features (default), or with LoRA adapters
  --epochs N         (default 40 for head, 6 for lora)       --lr X   peak learning rate
  --held-out X       share of each label held out (default 0.2)
  --max-length N     tokens kept from the start of each text (default 128)
  --batch-size N     (default 8)   --rank N   LoRA rank (default 8)   --seed N (default 0)
  --out DIR          where the classifier goes (default ./classifier)
  --json             one JSON object per line
  --backend auto|tensorflow|wasm|cpu`;

const OPTIONS = {
  model: { type: 'string' },
  data: { type: 'string' },
  'text-field': { type: 'string' },
  'label-field': { type: 'string' },
  method: { type: 'string' },
  epochs: { type: 'string' },
  lr: { type: 'string' },
  'held-out': { type: 'string' },
  'max-length': { type: 'string' },
  'batch-size': { type: 'string' },
  rank: { type: 'string' },
  seed: { type: 'string' },
  out: { type: 'string' },
  json: { type: 'boolean' },
  backend: { type: 'string' },
} as const;

export function trainClassifierCommand(args: string[], io: CliIo = PROCESS_IO): Promise<number> {
  return runTask('train-classifier', TRAIN_CLASSIFIER_USAGE, OPTIONS, args, io, async (values) => {
    const modelDir = required(values.model, 'train-classifier needs --model DIR');
    const dataFile = required(values.data, 'train-classifier needs --data F.csv or F.jsonl');
    const format = formatOfFile(dataFile);
    if (format === null) throw new UsageError(`--data ${dataFile}: use a .csv or .jsonl file`);
    const method = values.method ?? 'head';
    if (method !== 'head' && method !== 'lora') throw new UsageError(`--method must be head or lora, got "${method}"`);
    const heldOutFraction = parseFloatOption('held-out', values['held-out']) ?? 0.2;
    if (!(heldOutFraction > 0 && heldOutFraction < 1)) throw new UsageError(`--held-out must be between 0 and 1, got ${heldOutFraction}`);
    const rank = parseIntOption('rank', values.rank, 1);
    if (rank !== undefined && method !== 'lora') throw new UsageError('--rank applies to --method lora only');
    const seed = parseIntOption('seed', values.seed, 0) ?? 0;
    const options: ClassifierTrainingOptions = {
      method,
      epochs: parseIntOption('epochs', values.epochs, 1),
      learningRate: parseFloatOption('lr', values.lr),
      maxLength: parseIntOption('max-length', values['max-length'], 1),
      batchSize: parseIntOption('batch-size', values['batch-size'], 1),
      lora: rank === undefined ? undefined : { rank },
      seed,
    };
    for (const key of Object.keys(options) as (keyof ClassifierTrainingOptions)[]) if (options[key] === undefined) delete options[key];
    const out = path.resolve(values.out ?? 'classifier');

    const content = await readFile(dataFile, 'utf8').catch(() => {
      throw new UsageError(`--data ${dataFile} cannot be read`);
    });
    const examples = parseLabelledData(content, format, { textField: values['text-field'], labelField: values['label-field'] }, dataFile);
    const { train, heldOut } = splitHeldOut(examples, heldOutFraction, seed);
    const emit = (object: Record<string, unknown>, line: string) => io.stdout.write((values.json ? JSON.stringify(object) : line) + '\n');

    const backend = await initBackend(values.backend);
    const [model, tokenizer] = await Promise.all([loadModel(modelDir), loadTokenizer(modelDir)]);
    try {
      emit(
        { event: 'plan', backend: backend.name, examples: examples.length, train: train.length, heldOut: heldOut.length, method },
        `${examples.length} labelled texts: ${train.length} to train on, ${heldOut.length} held out; method ${method}; backend ${backend.name}`,
      );
      const result = await trainClassifier({
        config: model.config,
        params: paramMapOf(model.params),
        tokenizer,
        train,
        heldOut,
        // Labels in the order the file first names them, whatever the shuffled split.
        options: { ...options, labels: labelsOf(examples) },
        signal: io.signal,
        onEpoch: (e) => emit({ event: 'epoch', ...e }, `epoch ${e.epoch}/${e.epochs} loss ${e.trainLoss.toFixed(4)}`),
      });
      try {
        await saveClassifier(out, result.classifier, modelDir, result.evaluation);
        const ev = result.evaluation;
        if (ev) emit({ event: 'evaluation', ...ev }, evaluationText(ev));
        emit({ event: 'done', out }, `classifier written to ${out}`);
      } finally {
        result.classifier.dispose();
      }
      return 0;
    } finally {
      model.dispose();
    }
  });
}

/** Accuracy, the majority-class baseline and the confusion matrix (rows: actual, columns: predicted). */
export function evaluationText(ev: ClassifierEvaluation): string {
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  const width = Math.max(6, ...ev.labels.map((l) => l.length)) + 2;
  const pad = (s: string) => s.padStart(width);
  const lines = [
    `held-out accuracy ${pct(ev.accuracy)} on ${ev.count} texts (always "${ev.majorityLabel}": ${pct(ev.majorityAccuracy)})`,
    'confusion matrix (rows: actual, columns: predicted)',
    pad('') + ev.labels.map(pad).join(''),
    ...ev.confusion.map((row, i) => pad(ev.labels[i]) + row.map((n) => pad(String(n))).join('')),
  ];
  return lines.join('\n');
}
