// The trainer demonstrably learns: a small GPT-2 fine-tuned on ship's logs in which a made-up captain
// recurs ends with a far lower held-out loss, and greedy continuations of "said Captain" name him, which
// they did not before. The model is the one the run exports (merged, written, loaded back).
//
// Why full fine-tuning on the tiny fixture and not LoRA: the fixture's tied embeddings are tiny random
// vectors (32 wide), and LoRA leaves them and ln_f frozen, so adapters can move a logit by only ~0.3 nats —
// enough to lower the loss (trainer.test.ts shows that) but not to lift " Z" above 50k other tokens for
// each of the name's four tokens. A wider random model would let LoRA do it, but its 50k-row output layer
// makes the same run several times slower; full training on the fixture learns the name in ~40 small steps.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { generate } from '../../worker/generate/index.js';
import { loadModel } from '../../worker/model/load.js';
import type { GPT2Model } from '../../worker/model/gpt2.js';
import { gpt2Tokenizer } from '../../worker/tokenizer/index.js';
import { buildDataset, type TrainingText } from '../../worker/train/data.js';
import { exportTrainedModel } from '../../worker/train/export.js';
import { datasetOptions, resolveTrainingOptions } from '../../worker/train/options.js';
import { paramMapOf } from '../../worker/train/params.js';
import { runTraining } from '../../worker/train/trainer.js';
import { tempDir, tinyGpt2, useWasm } from './helpers.js';

const NAME = ' Zorblax';
// A line the logs never contain, so the continuation is not recalled text.
const PROMPT = '"Hold on," said Captain';

const SUBJECTS = ['The storm', 'A gull', 'The cook', 'Old Meg', 'The lantern', 'A stranger', 'The first mate', 'The harbour bell', 'The cabin boy', 'A letter', 'The fog', 'The map'];
const VERBS = ['rolled in over', 'cried above', 'waited beside', 'shuffled along', 'swung across', 'appeared on', 'hurried down', 'rang out over', 'ran along', 'arrived at', 'settled on', 'lay open on'];
const PLACES = ['the grey harbour', 'the north pier', 'the long deck', 'the quiet bay', 'the old mast', 'the crowded quay', 'the narrow stairs', 'the sleeping town', 'the rigging', 'the chart table', 'the black water', "the captain's desk"];
const ORDERS = ['"Hold fast,"', '"Trim the sails,"', '"We leave at dawn,"', '"Not tonight,"', '"Bring the lamp,"', '"Steady now,"', '"Mind the rocks,"', '"Drop anchor,"'];

/** Twenty logs of four varied scenes, each answered by the captain: the name is the one thing they share. */
function shipsLogs(): TrainingText[] {
  return Array.from({ length: 20 }, (_, i) => {
    const scenes: string[] = [];
    for (let k = 0; k < 4; k++) {
      const j = i * 4 + k;
      scenes.push(`${SUBJECTS[j % 12]} ${VERBS[(j * 5 + 1) % 12]} ${PLACES[(j * 7 + 3) % 12]}. ${ORDERS[(j * 3) % 8]} said Captain Zorblax.`);
    }
    return { name: `log ${i}`, text: scenes.join(' ') };
  });
}

async function greedyContinuation(model: GPT2Model): Promise<string> {
  const tokenizer = gpt2Tokenizer();
  const result = await generate(model, tokenizer, tokenizer.encode(PROMPT), { maxNewTokens: 4, doSample: false, eosTokenId: null });
  return result.sequences[0].text;
}

test('fine-tuning on logs of a made-up captain lowers the held-out loss and makes greedy text name him', async () => {
  await useWasm();
  const tensorsBefore = tf.memory().numTensors;
  const base = await loadModel(tinyGpt2);
  const params = paramMapOf(base.params);
  const options = resolveTrainingOptions(
    {
      method: 'full',
      epochs: 2,
      batchSize: 2,
      gradAccumSteps: 1,
      blockSize: 32,
      learningRate: 1e-2,
      warmupSteps: 2,
      dropout: 0,
      heldOutFraction: 0.2,
      // Held-out loss before and after only: evaluations in between would double the run's time.
      evalEvery: 1000,
      earlyStopPatience: null,
      seed: 1,
    },
    base.config,
  );
  const dataset = buildDataset(shipsLogs(), gpt2Tokenizer(), datasetOptions(options));
  assert.equal(dataset.split, 'documents', 'held-out text is whole logs the model never trains on');
  assert.ok(dataset.heldOutDocuments.length >= 2);

  const before = await greedyContinuation(base);
  assert.ok(!before.includes('Zorblax'), `the untrained model already names the captain: ${JSON.stringify(before)}`);

  const result = await runTraining({ config: base.config, params, dataset, options });
  const dir = path.join(tempDir('learns-phrase'), 'model');
  try {
    assert.equal(result.status, 'completed');
    const [initial, final] = [result.initialHeldOutLoss!, result.finalHeldOutLoss!];
    // Observed 10.83 → 3.43 nats: from uniform over 50k tokens to a model of the logs' text.
    assert.ok(initial > 10, `the random fixture starts near ln(50257) ≈ 10.8: ${initial}`);
    assert.ok(final < initial - 4, `held-out loss ${initial} → ${final}`);
    await exportTrainedModel(dir, base.config, params, result.weights);
  } finally {
    result.weights.dispose();
    base.dispose();
  }

  const trained = await loadModel(dir);
  try {
    const after = await greedyContinuation(trained);
    assert.ok(after.startsWith(NAME), `after training, "${PROMPT}" continues ${JSON.stringify(after)}, not "${NAME}…"`);
  } finally {
    trained.dispose();
  }
  assert.equal(tf.memory().numTensors, tensorsBefore, 'no tensor outlives the run');
});
