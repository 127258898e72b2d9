// ImageNet-1k's class names (lib/data/imagenet_classes.ts): the list of pytorch/hub's
// imagenet_classes.txt, indexed by the labels DiT was trained with.
import { test } from 'node:test';
import * as assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { classLabel, IMAGENET_CLASSES, imagenetClassName } from '../lib/data/imagenet_classes';
import { SAMPLE_PY_CLASSES } from '../lib/sample/sample';

test('1000 names, byte for byte the list of pytorch/hub imagenet_classes.txt', () => {
  assert.equal(IMAGENET_CLASSES.length, 1000);
  const sha = createHash('sha256').update(IMAGENET_CLASSES.join('\n')).digest('hex');
  assert.equal(sha, '1f386e0d1cb6e28b9c2dac651c3dea6801e98ad1b41a14ce6bb1a093d72069f5');
  assert.ok(Object.isFrozen(IMAGENET_CLASSES));
  for (const n of IMAGENET_CLASSES) assert.match(n, /^[A-Za-z0-9][A-Za-z0-9 '.-]*[A-Za-z0-9]$/, n);
});

test('the labels DiT samples have their ImageNet names', () => {
  assert.equal(imagenetClassName(0), 'tench');
  assert.equal(imagenetClassName(1), 'goldfish');
  assert.equal(imagenetClassName(207), 'golden retriever');
  assert.equal(imagenetClassName(999), 'toilet tissue');
  assert.deepEqual(SAMPLE_PY_CLASSES.map(imagenetClassName), ['golden retriever', 'otter', 'lesser panda', 'geyser', 'macaw', 'valley', 'balloon', 'Arctic fox']);
  assert.throws(() => imagenetClassName(1000), /class label 1000 is outside \[0, 1000\)/);
  assert.throws(() => imagenetClassName(-1), /outside/);
  assert.throws(() => imagenetClassName(2.5), /outside/);
});

test('two names occur twice (as in the source list); "name (label)" is unique', () => {
  const seen = new Map<string, number[]>();
  IMAGENET_CLASSES.forEach((n, i) => seen.set(n, [...(seen.get(n) ?? []), i]));
  assert.deepEqual([...seen].filter(([, v]) => v.length > 1), [['crane', [134, 517]], ['maillot', [638, 639]]]);
  const labels = IMAGENET_CLASSES.map((_, i) => classLabel(i));
  assert.equal(new Set(labels).size, 1000);
  assert.equal(classLabel(207), 'golden retriever (207)');
  assert.equal(classLabel(207, 1000), 'golden retriever (207)');
  // A model with another class count has no names for its labels.
  assert.equal(classLabel(3, 5), 'class 3');
  assert.throws(() => classLabel(5, 5), /class label 5 is outside \[0, 5\)/);
});
