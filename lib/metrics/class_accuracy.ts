// Class-conditional accuracy of generated samples: the share a classifier assigns to the
// class each sample was generated for (the mini study's check that samples show class
// shapes; `dit evaluate` reports it when the samples carry their labels).

/** Share of rows of `logits` (n x k, row-major) whose argmax (first on ties) is labels[i]. */
export function classAccuracy(logits: ArrayLike<number>, k: number, labels: ArrayLike<number>): number {
  const n = labels.length;
  if (!(Number.isInteger(k) && k >= 1)) throw new Error(`classAccuracy: the classifier needs at least one class, got ${k}`);
  if (logits.length !== n * k) throw new Error(`classAccuracy: ${n} labels need ${n} x ${k} logits, got ${logits.length} values`);
  if (n === 0) throw new Error('classAccuracy: no samples');
  let hit = 0;
  for (let i = 0; i < n; i++) {
    const y = labels[i];
    if (!(Number.isInteger(y) && y >= 0 && y < k)) throw new Error(`classAccuracy: label ${y} of sample ${i} is not one of the classifier's ${k} classes`);
    let best = 0;
    for (let c = 1; c < k; c++) if (logits[i * k + c] > logits[i * k + best]) best = c;
    if (best === y) hit++;
  }
  return hit / n;
}
