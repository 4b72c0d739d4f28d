import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { completeGPT2Config, gpt2ConfigToJson, parseGPT2Config } from '../../worker/model/config.js';
import { ModelFormatError } from '../../worker/model/errors.js';
import { tinyGpt2 } from './helpers.js';

function rejects(raw: unknown, code: string, mentions: RegExp): void {
  assert.throws(
    () => parseGPT2Config(raw),
    (e: unknown) => e instanceof ModelFormatError && e.code === code && mentions.test(e.message),
  );
}

test('the fixture config', () => {
  const config = parseGPT2Config(JSON.parse(readFileSync(path.join(tinyGpt2, 'config.json'), 'utf8')));
  assert.deepEqual(config, {
    vocabSize: 50257,
    nPositions: 64,
    nEmbd: 32,
    nLayer: 2,
    nHead: 4,
    nInner: 128,
    layerNormEpsilon: 1e-5,
    activation: 'gelu_new',
    scaleAttnWeights: true,
    scaleAttnByInverseLayerIdx: false,
    bosTokenId: 50256,
    eosTokenId: 50256,
    tieWordEmbeddings: true,
  });
});

test('missing fields take transformers GPT2Config defaults (GPT-2 small)', () => {
  const config = parseGPT2Config({ model_type: 'gpt2' });
  assert.equal(config.vocabSize, 50257);
  assert.equal(config.nPositions, 1024);
  assert.equal(config.nEmbd, 768);
  assert.equal(config.nLayer, 12);
  assert.equal(config.nHead, 12);
  assert.equal(config.nInner, 3072);
  assert.equal(config.activation, 'gelu_new');
  assert.equal(config.eosTokenId, 50256);
  assert.equal(parseGPT2Config({ n_embd: 64, n_head: 4 }).nInner, 256, 'n_inner follows n_embd');
  assert.equal(parseGPT2Config({ n_inner: 100 }).nInner, 100);
});

test('transformers aliases and activation names', () => {
  const config = parseGPT2Config({ hidden_size: 64, num_attention_heads: 8, num_hidden_layers: 3, max_position_embeddings: 128 });
  assert.deepEqual([config.nEmbd, config.nHead, config.nLayer, config.nPositions], [64, 8, 3, 128]);
  assert.equal(parseGPT2Config({ activation_function: 'gelu' }).activation, 'gelu');
  assert.equal(parseGPT2Config({ activation_function: 'gelu_fast' }).activation, 'gelu_new');
  assert.equal(parseGPT2Config({ activation_function: 'relu' }).activation, 'relu');
  assert.equal(parseGPT2Config({ activation_function: 'gelu_pytorch_tanh' }).activation, 'gelu_pytorch_tanh');
  assert.equal(parseGPT2Config({ eos_token_id: null }).eosTokenId, null);
  assert.equal(parseGPT2Config({ eos_token_id: [7, 8] }).eosTokenId, 7);
  assert.equal(parseGPT2Config({ tie_word_embeddings: false }).tieWordEmbeddings, false);
  assert.equal(parseGPT2Config({ scale_attn_by_inverse_layer_idx: true }).scaleAttnByInverseLayerIdx, true);
});

test('a config of another architecture is refused by name', () => {
  rejects({ model_type: 'llama', hidden_size: 4096 }, 'not_gpt2', /'llama' model/);
  rejects({ architectures: ['BertModel'] }, 'not_gpt2', /BertModel/);
  rejects('gpt2', 'invalid_config', /not a JSON object/);
});

test('impossible values name the field', () => {
  rejects({ n_embd: 770, n_head: 12 }, 'invalid_config', /n_embd \(770\) is not divisible by n_head \(12\)/);
  rejects({ n_layer: 0 }, 'invalid_config', /n_layer must be a positive integer/);
  rejects({ vocab_size: 1.5 }, 'invalid_config', /vocab_size/);
  rejects({ n_positions: '1024' }, 'invalid_config', /n_positions/);
  rejects({ layer_norm_epsilon: -1 }, 'invalid_config', /layer_norm_epsilon/);
  rejects({ activation_function: 'swish' }, 'invalid_config', /activation_function "swish" is not supported/);
  rejects({ scale_attn_weights: 'yes' }, 'invalid_config', /scale_attn_weights/);
  rejects({ eos_token_id: -3 }, 'invalid_config', /eos_token_id/);
  rejects({ add_cross_attention: true }, 'invalid_config', /add_cross_attention/);
});

test('config.json written by gpt2ConfigToJson parses back to the same config', () => {
  const config = completeGPT2Config({ nEmbd: 48, nHead: 6, nLayer: 3, nInner: 100, activation: 'relu', scaleAttnByInverseLayerIdx: true });
  assert.deepEqual(parseGPT2Config(JSON.parse(JSON.stringify(gpt2ConfigToJson(config)))), config);
  assert.equal(completeGPT2Config({ nEmbd: 64, nHead: 4 }).nInner, 256);
});
