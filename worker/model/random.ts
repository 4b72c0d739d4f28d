/** Seeded random GPT-2 weights, for tests and benchmarks (no download needed). */
import { completeGPT2Config } from './config.js';
import { GPT2Model, type GPT2ModelOptions } from './gpt2.js';
import type { TensorToWrite } from './safetensors.js';
import type { GPT2Config } from './types.js';
import { gpt2TensorShapes, paramsFromWeights } from './weights.js';

/**
 * Fills `out` with normal(0, std) values: Marsaglia's polar method (no trigonometry) on mulberry32, a tiny
 * 32-bit generator, both inlined because GPT-2 small needs 124M values.
 */
function fillNormal(out: Float32Array, std: number, state: { seed: number }): void {
  let s = state.seed;
  for (let i = 0; i < out.length; ) {
    let u: number;
    let v: number;
    let r: number;
    do {
      s = (s + 0x6d2b79f5) | 0;
      let t = Math.imul(s ^ (s >>> 15), s | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      u = ((t ^ (t >>> 14)) >>> 0) / 2147483648 - 1;
      s = (s + 0x6d2b79f5) | 0;
      t = Math.imul(s ^ (s >>> 15), s | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      v = ((t ^ (t >>> 14)) >>> 0) / 2147483648 - 1;
      r = u * u + v * v;
    } while (r >= 1 || r === 0);
    const factor = std * Math.sqrt((-2 * Math.log(r)) / r);
    out[i++] = u * factor;
    if (i < out.length) out[i++] = v * factor;
  }
  state.seed = s;
}

/**
 * Hugging Face–named F32 tensors initialised as transformers initialises GPT-2 (normal(0, 0.02) weights,
 * residual projections scaled by 1/√(2·n_layer), zero biases, unit LayerNorm), the same for the same seed.
 */
export function randomWeights(config: GPT2Config, seed: number): Record<string, TensorToWrite> {
  const state = { seed: seed | 0 };
  const residualStd = 0.02 / Math.sqrt(2 * config.nLayer);
  const weights: Record<string, TensorToWrite> = {};
  for (const [name, shape] of gpt2TensorShapes(config)) {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    if (/ln_\w+\.weight$/.test(name)) data.fill(1);
    else if (name.endsWith('.weight')) fillNormal(data, name.endsWith('c_proj.weight') ? residualStd : 0.02, state);
    weights[name] = { dtype: 'F32', shape, data };
  }
  return weights;
}

/**
 * A GPT-2 with random weights; fields left out of `config` take GPT-2 small's values. `tieWordEmbeddings:
 * false` gives it an output layer of its own (random too), as an untied checkpoint's `lm_head.weight`.
 */
export function createRandomModel(
  config: Partial<GPT2Config> & { tieWordEmbeddings?: boolean },
  seed: number,
  options: GPT2ModelOptions = {},
): GPT2Model {
  const full = completeGPT2Config(config);
  const weights = randomWeights(full, seed);
  const lmHead = () => {
    const data = new Float32Array(full.vocabSize * full.nEmbd);
    fillNormal(data, 0.02, { seed: seed + 1 });
    return data;
  };
  const params = paramsFromWeights(
    full,
    (name) => {
      const { data } = weights[name];
      delete weights[name]; // lets the JS copy go as soon as the tensor holds it
      return data;
    },
    { lmHead: full.tieWordEmbeddings ? undefined : lmHead },
  );
  return new GPT2Model(full, params, options);
}
