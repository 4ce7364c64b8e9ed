/**
 * Writes a list of operations as one atomic LevelDB batch. Every batch Sluice writes goes through
 * here: it uses classic-level's chained batch, which hands each operation to LevelDB as it is
 * added, instead of abstract-level's array form, which clones, re-validates and re-encodes every
 * operation in JavaScript first. Measured on 300-byte values: 2.1× faster for 5-operation batches
 * (a message's commit), 3.6× for 50, 5× for 1,000 (the queue fixture, bulk operations).
 */
import type { BatchOp } from './group-commit.js';
import type { LevelDb } from './level-db.js';

export async function writeOps(db: LevelDb, ops: readonly BatchOp[], options: { sync: boolean }): Promise<void> {
  if (!ops.length) return;
  const batch = db.batch();
  try {
    for (const op of ops) {
      if (op.type === 'put') batch.put(op.key, op.value);
      else batch.del(op.key);
    }
  } catch (err) {
    await batch.close();
    throw err;
  }
  await batch.write(options);
}
