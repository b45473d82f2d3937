// The ImageNet class names must match the class indices the model predicts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { imagenetLabels } from '../../model/labels.js';

void test('there are 1000 ImageNet labels, non-empty and frozen', () => {
  assert.equal(imagenetLabels.length, 1000);
  for (const label of imagenetLabels) {
    assert.equal(typeof label, 'string');
    assert.equal(label.trim(), label);
    assert.notEqual(label, '');
  }
  assert.ok(Object.isFrozen(imagenetLabels));
});

void test('the labels follow the ILSVRC-2012 class index order', () => {
  assert.equal(imagenetLabels[0], 'tench');
  assert.equal(imagenetLabels[1], 'goldfish');
  assert.equal(imagenetLabels[2], 'great white shark');
  assert.equal(imagenetLabels[207], 'Golden Retriever');
  assert.equal(imagenetLabels[999], 'toilet paper');
});

// WordNet names two classes "crane" and two "maillot"; the simple-labels source tells them apart.
void test('every label is distinct, including the classes WordNet names alike', () => {
  assert.equal(new Set(imagenetLabels).size, 1000);
  assert.equal(imagenetLabels[134], 'crane (bird)');
  assert.equal(imagenetLabels[517], 'crane (machine)');
});
