import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MergeRules } from '../../worker/tokenizer/bpe.js';
import { seededRandom } from './random-text.js';

/** GPT-2's encoder.py merge loop, written plainly: merge every occurrence of the best pair per pass. */
function referenceBpe(symbols: number[], ranks: Map<string, [number, number]>): number[] {
  let word = symbols.slice();
  for (;;) {
    let best: [number, number] | undefined;
    let bestPair = -1;
    for (let i = 0; i + 1 < word.length; i++) {
      const merge = ranks.get(`${word[i]},${word[i + 1]}`);
      if (merge && (!best || merge[0] < best[0])) {
        best = merge;
        bestPair = i;
      }
    }
    if (!best) return word;
    const [a, b] = [word[bestPair], word[bestPair + 1]];
    const next: number[] = [];
    for (let i = 0; i < word.length; i++) {
      if (i + 1 < word.length && word[i] === a && word[i + 1] === b) {
        next.push(best[1]);
        i++;
      } else next.push(word[i]);
    }
    word = next;
  }
}

test('both merge paths equal GPT-2\'s merge loop on random vocabularies', () => {
  const seed = 7;
  const random = seededRandom(seed);
  for (let vocabulary = 0; vocabulary < 20; vocabulary++) {
    // A small alphabet and many merges give long merge chains and overlapping pairs (a a a a).
    const alphabet = 2 + Math.floor(random() * 4);
    const ranks = new Map<string, [number, number]>();
    const short = new MergeRules(0, Number.POSITIVE_INFINITY);
    const long = new MergeRules(0, 0);
    let next = alphabet;
    for (let attempt = 0; attempt < 300; attempt++) {
      const a = Math.floor(random() * next);
      const b = Math.floor(random() * next);
      if (ranks.has(`${a},${b}`)) continue;
      ranks.set(`${a},${b}`, [ranks.size, next]);
      short.add(a, b, next);
      long.add(a, b, next);
      next++;
    }
    for (let word = 0; word < 200; word++) {
      const length = 1 + Math.floor(random() * 150);
      const symbols = Array.from({ length }, () => Math.floor(random() * alphabet));
      const expected = referenceBpe(symbols, ranks);
      for (const [name, rules] of [['short', short], ['long', long]] as const) {
        const ids = Int32Array.from(symbols);
        const n = rules.apply(ids, length);
        assert.deepEqual([...ids.subarray(0, n)], expected, `seed ${seed}, vocabulary ${vocabulary}, ${name} path, word ${symbols}`);
      }
    }
  }
});
