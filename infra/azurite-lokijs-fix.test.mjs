// node --test infra/azurite-lokijs-fix.test.mjs (run by the integration suite's AzuriteLokiFixTests).
// Two things: a single removal no longer rebuilds the indices, and the indices stay exactly right under a random mix
// of the operations Azurite makes (insert, update, single and batch removal, indexed and range finds).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { installIncrementalIndexing } from './azurite-lokijs-fix.mjs';

const here = path.dirname(fileURLToPath(import.meta.url));
const Loki = createRequire(path.join(here, 'node_modules', 'azurite', 'dist', 'src', 'azurite.js'))('lokijs');
assert.ok(installIncrementalIndexing(Loki.Collection), 'the fix must recognise the LokiJS Azurite ships');

// A message collection shaped like Azurite's queue store: the same indices, a low-selectivity one first.
function messages() {
  const db = new Loki('test.db');
  return db.addCollection('messages', { indices: ['accountName', 'queueName', 'messageId', 'timeNextVisible'] });
}

test('removing nothing or one document, or updating a few, re-sorts no index', () => {
  const coll = messages();
  for (let i = 0; i < 1000; i++) coll.insert({ accountName: 'a', queueName: `q${i % 7}`, messageId: `m${i}`, timeNextVisible: i });
  let rebuilds = 0;
  const ensureIndex = coll.ensureIndex;
  coll.ensureIndex = function (...args) {
    rebuilds++;
    return ensureIndex.apply(this, args);
  };
  // What Azurite's sweep of expired messages does on every queue request: finds none, removes the empty array. That
  // must not walk the documents either.
  const data = coll.data;
  let walks = 0;
  Object.defineProperty(coll, 'data', { configurable: true, get: () => (walks++, data) });
  coll.remove([]);
  assert.equal(walks, 0);
  Object.defineProperty(coll, 'data', { configurable: true, writable: true, value: data });
  coll.findAndRemove({ messageId: 'none' });
  // What a blob delete and an extent sweep do: one document found by a query, removed as an array of one.
  coll.findAndRemove({ messageId: 'm500' });
  coll.remove([coll.findOne({ messageId: 'm10' })]);
  // What a queue read does: changes the messages it hands out in place, then updates them as one array.
  const read = coll.chain().find({ queueName: 'q1' }).limit(32).data();
  for (const doc of read) doc.timeNextVisible += 5000;
  coll.update(read);
  assert.equal(rebuilds, 0);
  assert.equal(coll.chain().find({ queueName: 'q1', timeNextVisible: { $gte: 5000 } }).data().length, 32);
  assert.equal(coll.count(), 998);
  assert.equal(coll.findOne({ messageId: 'm500' }), null);
  assert.equal(coll.find({ queueName: 'q3' }).length, 143 - (500 % 7 === 3 ? 1 : 0) - (10 % 7 === 3 ? 1 : 0));
});

test('indices stay exact under a random mix of inserts, updates and removals', () => {
  // A small deterministic generator: a failure reproduces.
  let seed = 20261207;
  const random = (n) => {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    return seed % n;
  };
  const coll = messages();
  const model = new Map();
  let next = 0;
  for (let step = 0; step < 20000; step++) {
    const op = random(10);
    const ids = [...model.keys()];
    if (op < 4 || ids.length === 0) {
      const doc = { accountName: random(3) === 0 ? 'b' : 'a', queueName: `q${random(5)}`, messageId: `m${next++}`, timeNextVisible: random(1000) };
      coll.insert(doc);
      model.set(doc.messageId, { ...doc });
    } else if (op < 6) {
      // One document or several (sometimes more than the small-batch path takes), changed in place first, as Azurite does.
      const count = random(4) === 0 ? 1 + random(random(8) === 0 ? 100 : 6) : 1;
      const picked = [...new Set(Array.from({ length: count }, () => ids[random(ids.length)]))];
      const docs = picked.map((id) => coll.findOne({ messageId: id }));
      for (const doc of docs) {
        doc.timeNextVisible = random(1000);
        if (random(2) === 0) doc.queueName = `q${random(5)}`;
        model.set(doc.messageId, { ...model.get(doc.messageId), timeNextVisible: doc.timeNextVisible, queueName: doc.queueName });
      }
      coll.update(docs.length === 1 && random(2) === 0 ? docs[0] : docs);
    } else if (op < 9) {
      const id = ids[random(ids.length)];
      const how = random(3);
      if (how === 0) coll.findAndRemove({ messageId: id });
      else if (how === 1) coll.remove([coll.findOne({ messageId: id })]);
      else coll.remove(coll.findOne({ messageId: id }));
      model.delete(id);
      if (random(4) === 0) coll.remove([]);
    } else {
      // A batch (what Azurite's expiry sweep does): LokiJS's own path, left as it was.
      const queue = `q${random(5)}`;
      const limit = random(1000);
      coll.findAndRemove({ queueName: queue, timeNextVisible: { $lte: limit } });
      for (const [id, doc] of model) if (doc.queueName === queue && doc.timeNextVisible <= limit) model.delete(id);
    }

    if (step % 97 === 0 || step === 19999) {
      assert.equal(coll.count(), model.size, `count at step ${step}`);
      const queue = `q${random(5)}`;
      const limit = random(1000);
      const found = coll.chain().find({ queueName: queue, timeNextVisible: { $lte: limit } }).data().map((d) => d.messageId).sort();
      const expected = [...model.values()].filter((d) => d.queueName === queue && d.timeNextVisible <= limit).map((d) => d.messageId).sort();
      assert.deepEqual(found, expected, `indexed find at step ${step}`);
      const byTime = coll.chain().find({ timeNextVisible: { $lte: limit } }).data().length;
      assert.equal(byTime, [...model.values()].filter((d) => d.timeNextVisible <= limit).length, `range find at step ${step}`);
      if (ids.length > 0) {
        const id = ids[random(ids.length)];
        assert.equal(coll.findOne({ messageId: id })?.messageId ?? null, model.has(id) ? id : null, `look-up at step ${step}`);
      }
      for (const name of Object.keys(coll.binaryIndices)) {
        assert.ok(coll.checkIndex(name, { randomSampling: false, repair: false }), `index ${name} at step ${step}`);
      }
    }
  }
});
