// AdamW against PyTorch's update rule worked by hand, clipping, and the learning-rate schedule.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { AdamW, clipByGlobalNorm, learningRateAt } from '../../worker/train/optimizer.js';
import { useWasm } from './helpers.js';

before(useWasm);

/** torch.optim.AdamW, one scalar at a time, in float64. */
function referenceAdamW(p: number, grads: number[], lr: number[], wd: number, b1 = 0.9, b2 = 0.999, eps = 1e-8): number {
  let m = 0;
  let v = 0;
  grads.forEach((g, i) => {
    const t = i + 1;
    p *= 1 - lr[i] * wd;
    m = b1 * m + (1 - b1) * g;
    v = b2 * v + (1 - b2) * g * g;
    const denom = Math.sqrt(v) / Math.sqrt(1 - b2 ** t) + eps;
    p -= (lr[i] / (1 - b1 ** t)) * (m / denom);
  });
  return p;
}

test('AdamW follows PyTorch, decaying matrices but not biases', () => {
  const matrix = tf.variable(tf.tensor2d([[1, -2], [0.5, 3]]));
  const bias = tf.variable(tf.tensor1d([1, -1]));
  const optimizer = new AdamW(new Map<string, tf.Variable>([['w', matrix], ['b', bias]]), { beta1: 0.9, beta2: 0.999, epsilon: 1e-8, weightDecay: 0.1 });
  const gradients = [[0.5, -1, 2, 0.1], [0.3, 0.2, -4, 0], [1, 1, 1, 1]];
  const lrs = [0.1, 0.05, 0.01];
  for (let i = 0; i < 3; i++) {
    const g = new Map<string, tf.Tensor>([['w', tf.tensor2d(gradients[i], [2, 2])], ['b', tf.tensor1d(gradients[i].slice(0, 2))]]);
    optimizer.apply(g, lrs[i]);
    g.forEach((t) => t.dispose());
  }
  const w = matrix.dataSync();
  [1, -2, 0.5, 3].forEach((p0, j) => {
    const expected = referenceAdamW(p0, gradients.map((g) => g[j]), lrs, 0.1);
    assert.ok(Math.abs(w[j] - expected) < 1e-6, `w[${j}] ${w[j]} vs ${expected}`);
  });
  const b = bias.dataSync();
  [1, -1].forEach((p0, j) => {
    const expected = referenceAdamW(p0, gradients.map((g) => g[j]), lrs, 0);
    assert.ok(Math.abs(b[j] - expected) < 1e-6, `b[${j}] ${b[j]} vs ${expected} (no decay on 1-D parameters)`);
  });
  assert.equal(optimizer.step, 3);
  optimizer.dispose();
  matrix.dispose();
  bias.dispose();
});

test('moments saved and loaded continue the same trajectory', () => {
  const run = (split: boolean) => {
    const p = tf.variable(tf.tensor1d([0.3, -0.7, 2]));
    let opt = new AdamW(new Map([['p', p]]), { beta1: 0.9, beta2: 0.99, epsilon: 1e-8, weightDecay: 0 });
    for (let i = 0; i < 6; i++) {
      if (split && i === 3) {
        const { step, m, v } = opt.state();
        const [mc, vc] = [m.get('p')!.clone(), v.get('p')!.clone()];
        opt.dispose();
        opt = new AdamW(new Map([['p', p]]), { beta1: 0.9, beta2: 0.99, epsilon: 1e-8, weightDecay: 0 });
        opt.load(step, new Map([['p', mc]]), new Map([['p', vc]]));
        tf.dispose([mc, vc]);
      }
      const g = tf.tensor1d([Math.sin(i), Math.cos(i), 0.1 * i]);
      opt.apply(new Map([['p', g]]), 0.05);
      g.dispose();
    }
    const out = p.dataSync().slice();
    opt.dispose();
    p.dispose();
    return out;
  };
  assert.deepEqual(run(true), run(false));
});

test('global-norm clipping scales every gradient by the same factor, only when above the limit', () => {
  const grads = new Map<string, tf.Tensor>([['a', tf.tensor1d([3, 0])], ['b', tf.tensor2d([[0, 4]])]]);
  const clipped = clipByGlobalNorm(grads, 1);
  assert.ok(Math.abs(clipped.norm.dataSync()[0] - 5) < 1e-6);
  assert.ok(Math.abs(clipped.grads.get('a')!.dataSync()[0] - 0.6) < 1e-6);
  assert.ok(Math.abs(clipped.grads.get('b')!.dataSync()[1] - 0.8) < 1e-6);
  const loose = clipByGlobalNorm(grads, 10);
  assert.equal(loose.grads.get('b')!.dataSync()[1], 4);
  tf.dispose([...grads.values(), ...clipped.grads.values(), ...loose.grads.values(), clipped.norm, loose.norm]);
});

test('learning rate: linear warm-up from the first step, cosine to the floor at the last', () => {
  const s = { peak: 1e-3, min: 1e-4, warmupSteps: 4, totalSteps: 20 };
  assert.equal(learningRateAt(0, s), 2.5e-4);
  assert.equal(learningRateAt(3, s), 1e-3);
  assert.ok(Math.abs(learningRateAt(4, s) - 1e-3) < 1e-12);
  assert.ok(Math.abs(learningRateAt(19, s) - 1e-4) < 1e-12);
  const middle = learningRateAt(4 + 7.5, s);
  assert.ok(Math.abs(middle - 5.5e-4) < 1e-9, 'halfway down the cosine is halfway between peak and floor');
  for (let i = 4; i < 19; i++) assert.ok(learningRateAt(i + 1, s) < learningRateAt(i, s));
});
