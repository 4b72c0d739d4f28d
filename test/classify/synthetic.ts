/** A small labelled set of two topics with distinct vocabulary, made from a seed (the same every run). */
import type { LabelledText } from '../../worker/classify/index.js';
import { TrainingRng } from '../../worker/train/rng.js';

const TOPICS: Record<string, string[]> = {
  cooking: ['soup', 'garlic', 'oven', 'pepper', 'bake', 'onion', 'butter', 'recipe', 'simmer', 'flour', 'salt', 'kitchen'],
  space: ['planet', 'orbit', 'telescope', 'galaxy', 'comet', 'star', 'nebula', 'rocket', 'moon', 'asteroid', 'crater', 'launch'],
};
const FILLER = ['the', 'a', 'I', 'we', 'saw', 'today', 'with', 'and', 'about', 'some', 'really', 'new', 'then', 'our'];

/** `counts` texts per label, each mixing 4–6 topic words into filler words in random order. */
export function topicTexts(counts: Record<string, number>, seed = 7): LabelledText[] {
  const rng = new TrainingRng(seed);
  const pick = <T>(list: readonly T[]) => list[Math.floor(rng.nextFloat() * list.length)];
  const out: LabelledText[] = [];
  for (const [label, count] of Object.entries(counts)) {
    for (let i = 0; i < count; i++) {
      const words = [
        ...Array.from({ length: 4 + Math.floor(rng.nextFloat() * 3) }, () => pick(TOPICS[label])),
        ...Array.from({ length: 3 + Math.floor(rng.nextFloat() * 4) }, () => pick(FILLER)),
      ];
      for (let j = words.length - 1; j > 0; j--) {
        const k = Math.floor(rng.nextFloat() * (j + 1));
        [words[j], words[k]] = [words[k], words[j]];
      }
      out.push({ text: words.join(' ') + '.', label });
    }
  }
  return out;
}
