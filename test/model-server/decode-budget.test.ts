// The decoded-bytes budget on its own: which decodes run together, in what order, and that what
// they hold is given back even when a decode fails. Decodes are stand-ins finished by hand.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DecodeBudget } from '../../model-server/decode-budget.js';

function manualDecodes(budget: DecodeBudget) {
  const started: string[] = [];
  const finishers = new Map<string, (fail?: boolean) => void>();
  const decode = (name: string, bytes: number) =>
    budget.run(bytes, () => {
      started.push(name);
      return new Promise<string>((resolve, reject) =>
        finishers.set(name, (fail) => (fail ? reject(new Error(name)) : resolve(name))),
      );
    });
  const finish = async (name: string, fail = false) => {
    finishers.get(name)!(fail);
    await new Promise((resolve) => setImmediate(resolve));
  };
  return { started, decode, finish };
}

test('decodes run side by side only while their decoded bytes fit the budget', async () => {
  const budget = new DecodeBudget({ bytes: 100, slots: 8 });
  const { started, decode, finish } = manualDecodes(budget);
  const a = decode('a', 60);
  const b = decode('b', 60);
  await Promise.resolve();
  assert.deepEqual(started, ['a'], 'b would take the held bytes past the budget');
  assert.equal(budget.heldBytes, 60);
  await finish('a');
  assert.deepEqual(started, ['a', 'b']);
  await finish('b');
  assert.deepEqual(await Promise.all([a, b]), ['a', 'b']);
  assert.equal(budget.heldBytes, 0);
  assert.equal(budget.peakHeldBytes, 60);
});

test('an image larger than the whole budget decodes alone instead of never', async () => {
  const budget = new DecodeBudget({ bytes: 100, slots: 8 });
  const { started, decode, finish } = manualDecodes(budget);
  void decode('small', 10);
  const huge = decode('huge', 1_000);
  void decode('after', 10);
  await Promise.resolve();
  assert.deepEqual(started, ['small'], 'the huge image waits for the small one; the next waits behind it');
  await finish('small');
  assert.deepEqual(started, ['small', 'huge']);
  assert.equal(budget.heldBytes, 100, 'charged as the whole budget');
  await finish('huge');
  assert.equal(await huge, 'huge');
  assert.deepEqual(started, ['small', 'huge', 'after']);
  await finish('after');
});

test('arrival order holds: small images do not overtake a large one that waits', async () => {
  const budget = new DecodeBudget({ bytes: 100, slots: 8 });
  const { started, decode, finish } = manualDecodes(budget);
  void decode('first', 50);
  void decode('large', 80);
  void decode('small', 10);
  await Promise.resolve();
  assert.deepEqual(started, ['first']);
  await finish('first');
  assert.deepEqual(started, ['first', 'large', 'small']);
  await finish('large');
  await finish('small');
});

test('slots cap decodes at once whatever their size', async () => {
  const budget = new DecodeBudget({ bytes: 1_000, slots: 2 });
  const { started, decode, finish } = manualDecodes(budget);
  for (const name of ['a', 'b', 'c']) void decode(name, 1);
  await Promise.resolve();
  assert.deepEqual(started, ['a', 'b']);
  await finish('b');
  assert.deepEqual(started, ['a', 'b', 'c']);
  await finish('a');
  await finish('c');
});

test('a failed decode gives its bytes back', async () => {
  const budget = new DecodeBudget({ bytes: 100, slots: 1 });
  const { started, decode, finish } = manualDecodes(budget);
  const failing = assert.rejects(decode('bad', 100), /bad/);
  const next = decode('next', 100);
  await Promise.resolve();
  await finish('bad', true);
  await failing;
  assert.deepEqual(started, ['bad', 'next']);
  await finish('next');
  assert.equal(await next, 'next');
  assert.equal(budget.heldBytes, 0);
});
