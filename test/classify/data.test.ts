// Reading labelled texts from CSV and JSON Lines.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { formatOfFile, parseCsv, parseLabelledData } from '../../worker/classify/index.js';

test('CSV: quoted fields keep commas, newlines and doubled quotes; a BOM and CRLF are handled', () => {
  const csv = '\ufefftext,label\r\n"Hello, ""world""\nagain",greeting\r\nplain,other\r\n';
  assert.deepEqual(parseCsv(csv), [['text', 'label'], ['Hello, "world"\nagain', 'greeting'], ['plain', 'other']]);
  assert.deepEqual(parseLabelledData(csv, 'csv'), [
    { text: 'Hello, "world"\nagain', label: 'greeting' },
    { text: 'plain', label: 'other' },
  ]);
  assert.throws(() => parseCsv('a,b\n"open,1\n'), /not closed/);
  assert.throws(() => parseLabelledData('text,label\nx\n', 'csv', {}, 'd.csv'), /d\.csv record 1: 1 fields, the header has 2/);
});

test('JSONL with chosen field names; missing fields and bad lines are named', () => {
  const jsonl = '{"body": "a", "y": 1}\n\n{"body": "b", "y": "two"}\n';
  assert.deepEqual(parseLabelledData(jsonl, 'jsonl', { textField: 'body', labelField: 'y' }), [
    { text: 'a', label: '1' },
    { text: 'b', label: 'two' },
  ]);
  assert.throws(() => parseLabelledData(jsonl, 'jsonl', {}, 'f.jsonl'), /f\.jsonl line 1: no "text" field/);
  assert.throws(() => parseLabelledData('{oops\n', 'jsonl'), /line 1: not valid JSON/);
  assert.equal(formatOfFile('x.CSV'), 'csv');
  assert.equal(formatOfFile('x.jsonl'), 'jsonl');
  assert.equal(formatOfFile('x.txt'), null);
});
