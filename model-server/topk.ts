// Softmax over one image's logits and the k best classes, best first.

export interface ScoredClass {
  index: number;
  label: string;
  score: number;
}

export function topKClasses(logits: Float32Array, k: number, labels: readonly string[]): ScoredClass[] {
  let max = -Infinity;
  for (const value of logits) if (value > max) max = value;
  let sum = 0;
  for (const value of logits) sum += Math.exp(value - max);

  // Insertion into a small sorted list: k is at most a hundred, the class count about a thousand.
  const best: { index: number; logit: number }[] = [];
  for (let index = 0; index < logits.length; index++) {
    const logit = logits[index]!;
    if (best.length === k && logit <= best[k - 1]!.logit) continue;
    let position = best.length;
    while (position > 0 && best[position - 1]!.logit < logit) position--;
    best.splice(position, 0, { index, logit });
    if (best.length > k) best.pop();
  }
  return best.map(({ index, logit }) => ({
    index,
    label: labels[index] ?? `class ${index}`,
    score: Math.exp(logit - max) / sum,
  }));
}
