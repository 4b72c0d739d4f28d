/** The `inkling` command as a user runs it: a real child process, its stdout, stderr and exit code. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { nativeKernels } from '../../worker/model/kernels/native/native.js';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const tiny = path.resolve(repoRoot, '..', 'shared', 'fixtures', 'tiny-gpt2');
const reference = JSON.parse(readFileSync(path.join(tiny, 'reference.json'), 'utf8'));
const tokenizerCases: { text: string; ids: number[] }[] = JSON.parse(
  readFileSync(path.resolve(repoRoot, '..', 'shared', 'fixtures', 'tokenizer', 'cases.json'), 'utf8'),
);

function inkling(...args: string[]) {
  const r = spawnSync(process.execPath, [path.join(repoRoot, 'bin', 'inkling.mjs'), ...args], {
    encoding: 'utf8',
    env: { ...process.env, INKLING_BACKEND: 'wasm' },
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('generate --json reproduces the reference greedy continuation', () => {
  const c = reference.cases[0];
  const r = inkling('generate', '--model', tiny, '--prompt-ids', c.prompt_ids.join(','), '--max-new-tokens', '10', '--json');
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.backend, 'wasm');
  // The tiny model is too small to gain from a second thread: by default it runs on one.
  assert.equal(out.threads, 1);
  assert.equal(out.threadsNote, null);
  assert.equal(out.precision, 'exact');
  assert.equal(out.precisionNote, null);
  assert.deepEqual(out.sequences[0].ids, c.greedy_continuation);
  assert.equal(typeof out.timings.prefillMs, 'number');
});

test('generate --precision fast --json: the int8 weights decode, and the output says so', () => {
  const c = reference.cases[0];
  const r = inkling('generate', '--model', tiny, '--prompt-ids', c.prompt_ids.join(','), '--max-new-tokens', '10', '--precision', 'fast', '--json');
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.precision, 'fast');
  assert.equal(out.precisionNote, null);
  assert.equal(out.sequences[0].ids.length, 10);
});

test('logits --precision fast: the prompt runs 4 tokens at a time through the int8 weights, close to exact', () => {
  const c = reference.cases[2];
  const ids: number[] = c.prompt_ids.slice(0, 19); // steps of 4, 4, 4, 4 and 3
  const run = (...extra: string[]) => {
    const r = inkling('logits', '--model', tiny, '--prompt-ids', ids.join(','), '--json', ...extra);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout) as { precision: string; precisionNote: string | null; logits: number[] };
  };
  const exact = run();
  const fast = run('--precision', 'fast');
  assert.equal(exact.precision, 'exact');
  assert.deepEqual([fast.precision, fast.precisionNote], ['fast', null]);
  const range = Math.max(...exact.logits) - Math.min(...exact.logits);
  const error = Math.max(...fast.logits.map((x, i) => Math.abs(x - exact.logits[i])));
  assert.ok(error < 0.05 * range && error > 0, `largest difference ${error} of a range ${range}`);
  const last = c.logits_at_fixed_ids[ids.length - 1];
  reference.fixed_token_ids.forEach((id: number, i: number) => assert.ok(Math.abs(exact.logits[id] - last[i]) < 1e-4));
});

test('generate --threads 2 --json: two threads on wasm, the same greedy continuation; one on cpu, and why', () => {
  const c = reference.cases[0];
  const args = ['generate', '--model', tiny, '--prompt-ids', c.prompt_ids.join(','), '--max-new-tokens', '10', '--threads', '2', '--json'];
  const wasm = inkling(...args);
  assert.equal(wasm.code, 0, wasm.stderr);
  const out = JSON.parse(wasm.stdout);
  assert.equal(out.backend, 'wasm');
  assert.equal(out.threads, 2);
  assert.equal(out.threadsNote, null);
  assert.equal(out.nativeKernels, nativeKernels() !== null, out.nativeKernelsNote);
  assert.deepEqual(out.sequences[0].ids, c.greedy_continuation);

  const cpu = inkling(...args, '--backend', 'cpu');
  assert.equal(cpu.code, 0, cpu.stderr);
  const onCpu = JSON.parse(cpu.stdout);
  assert.equal(onCpu.backend, 'cpu');
  assert.equal(onCpu.threads, 1);
  assert.match(onCpu.threadsNote, /cpu backend/);
  assert.equal(onCpu.nativeKernels, false);
  assert.match(onCpu.nativeKernelsNote, /cpu backend runs its own kernels/);
});

test('generate with a text prompt, sampling and several sequences is deterministic by seed', () => {
  const args = ['generate', '--model', tiny, '--prompt', 'Hello, my dog is', '--max-length', '12', '--do-sample',
    '--top-k', '40', '--temperature', '0.9', '--num-return-sequences', '3', '--seed', '7', '--json'];
  const a = inkling(...args);
  const b = inkling(...args);
  assert.equal(a.code, 0, a.stderr);
  const sa = JSON.parse(a.stdout).sequences;
  assert.equal(sa.length, 3);
  for (const s of sa) assert.equal(s.ids.length, 12 - 5); // max_length counts the 5 prompt tokens
  assert.deepEqual(sa, JSON.parse(b.stdout).sequences);
});

test('logits --json gives the full last row, matching the reference', () => {
  const c = reference.cases[0];
  const r = inkling('logits', '--model', tiny, '--prompt-ids', c.prompt_ids.join(','), '--json');
  assert.equal(r.code, 0, r.stderr);
  const { logits } = JSON.parse(r.stdout);
  assert.equal(logits.length, reference.config.vocab_size);
  const last = c.logits_at_fixed_ids[c.prompt_ids.length - 1];
  reference.fixed_token_ids.forEach((id: number, i: number) => assert.ok(Math.abs(logits[id] - last[i]) < 1e-4));
});

test('tokenize and detokenize round-trip exactly, and -- lets a text start with a dash', () => {
  // A few representative cases (the tokenizer's own tests cover all of them in-process): spawning is slow.
  const picked = [/ {2,}/, /[\u4e00-\u9fff]/, /\p{Extended_Pictographic}/u].map((re) => tokenizerCases.find((x) => re.test(x.text))!);
  for (const c of picked) {
    const t = inkling('tokenize', '--json', '--', c.text);
    assert.equal(t.code, 0, t.stderr);
    assert.deepEqual(JSON.parse(t.stdout).ids, c.ids);
    const d = inkling('detokenize', c.ids.join(','));
    assert.equal(d.stdout, c.text); // nothing added, not even a newline
  }
  const dash = inkling('tokenize', '--', '-n 今天天气很好');
  assert.equal(dash.code, 0, dash.stderr);
  assert.equal(inkling('detokenize', dash.stdout.trim()).stdout, '-n 今天天气很好');
});

test('errors are one readable line on stderr with a non-zero exit code', () => {
  const cases: [string[], RegExp][] = [
    [['generate', '--model', '/no/such/dir', '--prompt', 'x'], /config\.json/],
    [['generate', '--model', tiny, '--prompt', 'x', '--top-p', 'abc'], /--top-p/],
    [['generate', '--model', tiny], /--prompt/],
    [['generate', '--model', tiny, '--prompt', 'x', '--temperature', '-1'], /temperature/],
    [['generate', '--model', tiny, '--prompt', 'x', '--threads', '0'], /--threads must be an integer ≥ 1/],
    [['generate', '--model', tiny, '--prompt', 'x', '--precision', 'int4'], /--precision must be exact or fast, got "int4"/],
    [['frobnicate'], /unknown command/],
    [['detokenize', '1,x'], /not a token id/],
    [['logits', '--model', tiny, '--prompt-ids', '99999999', '--json'], /vocabulary/],
  ];
  for (const [args, message] of cases) {
    const r = inkling(...args);
    assert.notEqual(r.code, 0, `${args.join(' ')} should fail`);
    assert.match(r.stderr, message);
    assert.equal(r.stderr.trim().split('\n').length, 1, `one line for ${args.join(' ')}: ${r.stderr}`);
    assert.doesNotMatch(r.stderr, /\n\s+at /);
  }
  const verbose = inkling('generate', '--model', '/no/such/dir', '--prompt', 'x', '--verbose');
  assert.match(verbose.stderr, /\n\s+at /);
});

test('the task commands are reachable through the inkling binary', () => {
  const r = inkling('score', '--model', tiny, '--context', 'Hello, my dog', '--candidates', ' is| was', '--json');
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.deepEqual(out.candidates.map((c: { text: string }) => c.text), [' is', ' was']);
  for (const c of out.candidates) assert.ok(c.logProb < 0 && Number.isFinite(c.logProb));
  const help = inkling('--help');
  for (const name of ['finetune', 'eval', 'score', 'classify', 'train-classifier', 'rewrite', 'import', 'download']) {
    assert.match(help.stdout, new RegExp(`^  ${name} `, 'm'));
  }
});
