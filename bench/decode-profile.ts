/**
 * Where a decode step's time goes with two threads: per token, the time in the split products (attention
 * projections and output layer, waiting included), in the split MLPs, and in waiting for the partner; the
 * rest is this thread's serial work (embedding, layer norms, attention, sampling is not included).
 *
 *   T=2 P=exact node --import tsx bench/decode-profile.ts      (T: threads, P: exact | fast)
 */
import { initBackend, loadModel } from '../worker/index.js';
import { ensureGpt2SmallRandom } from './random-checkpoint.js';
import { DecodeProducts } from '../worker/model/parallel/decode-products.js';
import { PartnerChannel } from '../worker/model/parallel/partner-channel.js';
const acc: Record<string, number> = {};
function wrap(proto: Record<string, unknown>, name: string, label: string): void {
  const orig = proto[name] as (...args: unknown[]) => unknown;
  proto[name] = function (this: unknown, ...args: unknown[]) {
    const t = performance.now();
    try {
      return orig.apply(this, args);
    } finally {
      acc[label] = (acc[label] ?? 0) + performance.now() - t;
    }
  };
}
wrap(DecodeProducts.prototype as unknown as Record<string, unknown>, 'matMul', 'products');
wrap(DecodeProducts.prototype as unknown as Record<string, unknown>, 'mlp', 'mlps');
wrap(PartnerChannel.prototype as unknown as Record<string, unknown>, 'finish', 'wait');
await initBackend('wasm');
const model = await loadModel(await ensureGpt2SmallRandom(), { threads: Number(process.env.T ?? 2), precision: (process.env.P ?? 'exact') as 'exact' });
await (model as { threadsReady?: Promise<void> }).threadsReady;
const prompt = Array.from({ length: 128 }, (_, i) => (i * 7919 + 13) % 50000);
for (let round = 0; round < 3; round++) {
  const cache = model.createCache(1);
  const first = model.forward([prompt], cache);
  first.dataSync();
  first.dispose();
  for (const k of Object.keys(acc)) acc[k] = 0;
  const t0 = performance.now();
  let sync = 0;
  for (let i = 0; i < 32; i++) {
    const logits = model.forward([[(i * 31) % 50000]], cache);
    const ts = performance.now();
    logits.dataSync();
    sync += performance.now() - ts;
    logits.dispose();
  }
  const total = (performance.now() - t0) / 32;
  const per = Object.fromEntries(Object.entries(acc).map(([k, v]) => [k, +(v / 32).toFixed(2)]));
  console.log(`ms/token ${total.toFixed(1)}`, per, 'dataSync', (sync / 32).toFixed(2));
  cache.dispose();
}
process.exit(0);
