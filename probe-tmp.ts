import { initBackend } from './worker/backend.js';
import { createRandomModel } from './worker/model/random.js';
import { scoreContinuations } from './worker/score/index.js';
await initBackend('wasm');
const model = createRandomModel({}, 1);
const context = Array.from({ length: 200 }, (_, i) => (i * 131) % 50000);
const cands = [[100, 200, 300], [400, 500], [600], [700, 800, 900, 1000]];
const naive = async () => {
  for (const c of cands) {
    const cache = model.createCache(1);
    model.forward([[...context, ...c.slice(0, -1)]], cache, { allPositions: true }).dispose();
    cache.dispose();
  }
};
await scoreContinuations(model, context, cands); await naive();
for (let r = 0; r < 3; r++) {
  let t = performance.now(); await scoreContinuations(model, context, cands); const a = performance.now() - t;
  t = performance.now(); await naive(); const b = performance.now() - t;
  console.log(`cached+batched ${a.toFixed(0)} ms, naive per-candidate ${b.toFixed(0)} ms`);
}
model.dispose();
