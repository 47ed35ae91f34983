// Preloaded (node --import) into the Azurite server by run-azurite.mjs. It changes no behaviour of the emulator, only
// the cost of deleting one record.
//
// Azurite keeps its metadata (queue messages, blobs, extents) in LokiJS collections with binary indices. LokiJS 1.5.12
// (the last release) removes an array of documents through removeBatchByPositions, which re-sorts every index of the
// collection from scratch whatever the array holds, one document or none: O(n log n), with a JavaScript comparator,
// for n documents in the collection. Azurite calls it with an empty array on every queue request (its sweep of
// expired messages, which finds none), with one document for every blob it deletes, and one extent at a time in its
// garbage collectors, which hold the event loop for the whole sweep. Under an Azure Queue streams test that was the
// emulator's whole core, and once half a minute in which it answered no request (docs/limits.md).
//
// Updating an array of documents (every queue read: Azurite marks the messages it hands out, up to 32) re-sorts every
// index the same way.
//
// This makes removing nothing cost nothing (not even removeBatch's map of every document's position), and removing one
// document use LokiJS's own incremental index update (adaptiveBinaryIndexRemove: a binary search, a splice and a shift
// of the positions after it, O(n)), the one its single-document remove() already uses. An update of a few documents
// takes them out of each index, lets the original update them one by one with the indices out of its sight, and puts
// them back by binary search (O(k n) instead of O(n log n) comparisons); the callers change the documents in place
// before they call update, so the documents are found in an index by position, never by their (already changed) values.
// Anything else (larger batches, dirty or non-adaptive indices, cloned documents, transactions) goes through unchanged.
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));

// Above this many documents an update re-sorts the indices as LokiJS does (cheaper than k insertions for large k).
const MaxSmallBatch = 64;

/** The collection's index names when every index can be updated in place (adaptive, clean, no transaction), else null. */
function incrementalIndexNames(coll) {
  const indices = coll.binaryIndices;
  const names = indices ? Object.keys(indices) : [];
  if (!coll.adaptiveBinaryIndices || coll.transactional || names.length === 0 || names.some((name) => indices[name].dirty)) return null;
  return names;
}

/** Runs LokiJS's own operation with the indices out of its sight, so that it neither updates nor rebuilds them. */
function withIndicesHidden(coll, operation) {
  const indices = coll.binaryIndices;
  coll.binaryIndices = {};
  try {
    return operation();
  } finally {
    coll.binaryIndices = indices;
  }
}

/** Installs the incremental paths on LokiJS's Collection; returns false (and changes nothing) if LokiJS is not the expected shape. */
export function installIncrementalIndexing(Collection) {
  const proto = Collection?.prototype;
  const { removeBatchByPositions, removeBatch, update } = proto ?? {};
  if ([removeBatchByPositions, removeBatch, update, proto?.get, proto?.adaptiveBinaryIndexRemove, proto?.adaptiveBinaryIndexInsert]
    .some((f) => typeof f !== 'function')) return false;
  if (removeBatchByPositions.keystoneIncremental) return true;

  proto.removeBatchByPositions = function (positions) {
    // Nothing to remove: the original would still re-sort every index and mark the collection changed.
    if (Array.isArray(positions) && positions.length === 0) return undefined;
    const names = incrementalIndexNames(this);
    if (names === null || !Array.isArray(positions) || positions.length !== 1 ||
        typeof positions[0] !== 'number' || this.data[positions[0]] === undefined) {
      return removeBatchByPositions.call(this, positions);
    }
    for (const name of names) this.adaptiveBinaryIndexRemove(positions[0], name);
    return withIndicesHidden(this, () => removeBatchByPositions.call(this, positions));
  };
  proto.removeBatchByPositions.keystoneIncremental = true;

  // removeBatch maps every document's id to its position before it removes anything: O(n) for an empty array too.
  proto.removeBatch = function (batch) {
    if (Array.isArray(batch) && batch.length === 0) return undefined;
    if (Array.isArray(batch) && batch.length === 1) {
      const item = batch[0];
      const id = item !== null && typeof item === 'object' ? item.$loki : item;
      const found = typeof id === 'number' ? this.get(id, true) : null;
      if (found) return this.removeBatchByPositions([found[1]]);
    }
    return removeBatch.call(this, batch);
  };

  proto.update = function (doc) {
    const names = Array.isArray(doc) && doc.length > 0 && doc.length <= MaxSmallBatch && !this.cloneObjects ? incrementalIndexNames(this) : null;
    if (names === null) return update.call(this, doc);
    const positions = [];
    for (const d of doc) {
      const found = d && typeof d.$loki === 'number' ? this.get(d.$loki, true) : null;
      if (!found || positions.includes(found[1])) return update.call(this, doc);
      positions.push(found[1]);
    }
    const moving = new Set(positions);
    for (const name of names) this.binaryIndices[name].values = this.binaryIndices[name].values.filter((p) => !moving.has(p));
    try {
      withIndicesHidden(this, () => {
        for (const d of doc) update.call(this, d);
      });
    } finally {
      for (const name of names) for (const position of positions) this.adaptiveBinaryIndexInsert(position, name);
    }
    return undefined;
  };
  return true;
}

// The LokiJS that Azurite itself loads (the same module instance, so the same prototype).
if (process.env.KEYSTONE_AZURITE_SERVER === '1') {
  const azurite = path.join(here, 'node_modules', 'azurite', 'dist', 'src', 'azurite.js');
  try {
    const Loki = createRequire(azurite)('lokijs');
    if (!installIncrementalIndexing(Loki.Collection)) {
      console.error('azurite-lokijs-fix: LokiJS has an unexpected shape; removals and updates keep rebuilding indices');
    }
  } catch (e) {
    console.error(`azurite-lokijs-fix: not installed (${e.message})`);
  }
}
