/**
 * Training speed of candidate default-model shapes (npm run train:default): CPU seconds per 1,000 training
 * tokens for a few (layers, width, context) on real prose with the trained 8192-token vocabulary. CPU time
 * rather than wall time, because the machine is shared: it is what a dedicated core would take.
 *
 *   node --import tsx bench/default-model-shapes.ts TOKENIZER_DIR [L,C,T ...]
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { gunzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { initBackend } from '../worker/backend.js';
import { completeGPT2Config } from '../worker/model/config.js';
import { createRandomModel } from '../worker/model/random.js';
import { loadTokenizer } from '../worker/tokenizer/index.js';
import { paramMapOf, prepareTraining, runTraining } from '../worker/train/index.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const [tokenizerDir, ...specs] = process.argv.slice(2);
if (!tokenizerDir) throw new Error('usage: bench/default-model-shapes.ts TOKENIZER_DIR [L,C,T ...]');
await initBackend('wasm');
const tokenizer = await loadTokenizer(tokenizerDir);
const text = gunzipSync(readFileSync(path.resolve(repoRoot, '..', 'shared', 'corpus', 'carroll-alice-in-wonderland.txt.gz'))).toString('utf8');
const shapes = (specs.length > 0 ? specs : ['6,384,256', '4,256,256', '4,256,128', '6,256,128', '3,192,128']).map((s) => s.split(',').map(Number));

for (const [nLayer, nEmbd, context] of shapes) {
  const config = completeGPT2Config({ vocabSize: tokenizer.vocabSize, nPositions: context, nEmbd, nLayer, nHead: nEmbd / 64, bosTokenId: tokenizer.vocabSize - 1, eosTokenId: tokenizer.vocabSize - 1 });
  const batchSize = Math.round(1024 / context);
  const { dataset, options, plan } = prepareTraining([{ name: 'alice', text }], tokenizer, config, {
    method: 'full', fromScratch: true, maxSteps: 3, blockSize: context, batchSize, gradAccumSteps: 1, heldOutFraction: 0.01, evalEvery: 1000, dropout: 0,
  });
  const model = createRandomModel(config, 0);
  const times: number[] = [];
  let cpu = process.cpuUsage();
  let wall = performance.now();
  await runTraining({
    config, params: paramMapOf(model.params), dataset, options,
    onEvent: (e) => {
      if (e.type === 'started') {
        cpu = process.cpuUsage();
        wall = performance.now();
      }
      if (e.type !== 'progress') return;
      const used = process.cpuUsage(cpu);
      times.push((used.user + used.system) / 1e6);
      console.log(`  step ${e.step}: ${((used.user + used.system) / 1e6).toFixed(1)} cpu-s, ${((performance.now() - wall) / 1000).toFixed(1)} wall-s`);
      cpu = process.cpuUsage();
      wall = performance.now();
    },
  }).then((r) => r.weights.dispose());
  model.dispose();
  const best = Math.min(...times.slice(1));
  console.log(`${nLayer} layers × ${nEmbd}, context ${context}: ${(plan.trainableParameters / 1e6).toFixed(2)}M params, ${(best / (plan.tokensPerStep / 1000)).toFixed(2)} cpu-s per 1k tokens (${(plan.tokensPerStep / best).toFixed(0)} tok/cpu-s)`);
}
