/**
 * Child process for durability.test.ts: saves ever newer versions of one document as fast as it can and
 * prints `saving <version>` before and `committed <version>` right after each save, until the parent kills it.
 * Usage: node --import tsx durability-writer.ts <dataDir> <documentId> <bodyChars>
 */
import { writeSync } from 'node:fs';
import { openStore } from '../../main/store/index.js';
import { bodyFor, versionOf } from './durability-body.js';

const [dataDir, documentId, bodyChars] = process.argv.slice(2);
const store = openStore(dataDir, { trashRetentionDays: null });
let version = versionOf(store.getDocument(documentId)?.body ?? '');
// Synchronous writes: an asynchronous stdout would not flush while this loop never yields.
writeSync(1, `ready ${version}\n`);
for (;;) {
  version++;
  writeSync(1, `saving ${version}\n`);
  store.saveDocument(documentId, { title: `Version ${version}`, body: bodyFor(version, Number(bodyChars)) });
  writeSync(1, `committed ${version}\n`);
}
