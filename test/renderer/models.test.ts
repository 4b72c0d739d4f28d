import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ModelInfo } from '../../main/ipc/contract.js';
import { deleteBlocker, droppedPath, formatBytes, formatParameters, isUnavailable, jobErrorText, progressFraction, progressText, sourceText } from '../../renderer/src/lib/models.js';
import { fromAppError } from '../../main/ipc/errors.js';

const model = (over: Partial<ModelInfo>): ModelInfo => ({
  id: 'm',
  name: 'm',
  source: 'imported',
  origin: '/home/me/gpt2',
  shape: '',
  parameters: 124_439_808,
  sizeBytes: 548e6,
  memoryBytes: 1.2e9,
  active: false,
  createdAt: 1,
  ...over,
});

test('sizes and parameter counts read as people label them', () => {
  assert.equal(formatBytes(512), '512 B');
  assert.equal(formatBytes(6_545_240), '6.5 MB');
  assert.equal(formatBytes(548e6), '548 MB');
  assert.equal(formatBytes(6.43e9), '6.4 GB');
  assert.equal(formatBytes(-1), '—');
  assert.equal(formatParameters(124_439_808), '124M');
  assert.equal(formatParameters(1_557_611_200), '1.6B');
  assert.equal(formatParameters(85_000), '85k');
});

test('the bundled default and the active model cannot be deleted; others can', () => {
  assert.match(deleteBlocker(model({ source: 'bundled', origin: null }))!, /comes with Inkling/);
  assert.match(deleteBlocker(model({ active: true }))!, /active model/);
  assert.equal(deleteBlocker(model({})), null);
  assert.equal(sourceText(model({})), 'Imported from /home/me/gpt2');
  assert.equal(sourceText(model({ source: 'downloaded', origin: 'gpt2' })), 'Downloaded from gpt2');
  assert.equal(sourceText(model({ source: 'bundled', origin: null })), 'Comes with Inkling');
});

test('progress: a fraction when the total is known, bytes alone otherwise', () => {
  assert.equal(progressFraction({ bytes: 50, totalBytes: 200 }), 0.25);
  assert.equal(progressFraction({ bytes: 50, totalBytes: null }), null);
  assert.equal(progressFraction({ bytes: 500, totalBytes: 200 }), 1);
  assert.equal(progressText({ bytes: 12e6, totalBytes: 548e6 }), '12.0 MB of 548 MB (2%)');
  assert.equal(progressText({ bytes: 12e6, totalBytes: null }), '12.0 MB');
});

test('a failed job: offline gets a plain sentence, cancel says it resumes, others keep their message', () => {
  const base = { jobId: 'gpt2', kind: 'download' as const, bytes: 0, totalBytes: null };
  assert.match(jobErrorText({ ...base, state: 'error', error: { code: 'DOWNLOAD_OFFLINE', message: 'fetch failed' } })!, /offline/);
  assert.match(jobErrorText({ ...base, state: 'cancelled' })!, /continues where it stopped/);
  assert.equal(jobErrorText({ ...base, state: 'error', error: { code: 'DOWNLOAD_CHECKSUM', message: 'sha256 differs' } }), 'sha256 differs');
  assert.equal(jobErrorText({ ...base, state: 'running' }), null);
});

test('a dropped folder path: Electron file path, a file:// URL, a pasted path, or nothing', () => {
  const data = (types: Record<string, string>, files: Array<{ path?: string }> = []) => ({
    getData: (type: string) => types[type] ?? '',
    files: files as unknown as ArrayLike<File & { path?: string }>,
  });
  assert.equal(droppedPath(data({}, [{ path: '/models/gpt2' }])), '/models/gpt2');
  assert.equal(droppedPath(data({ 'text/uri-list': '# comment\nfile:///home/me/my%20gpt2' })), '/home/me/my gpt2');
  assert.equal(droppedPath(data({ 'text/plain': ' /srv/gpt2 ' })), '/srv/gpt2');
  assert.equal(droppedPath(data({ 'text/uri-list': 'https://example.com/x', 'text/plain': 'hello' })), null);
  assert.equal(droppedPath(null), null);
});

test('the import dialog is known to be missing only from a NOT_AVAILABLE answer', () => {
  assert.equal(isUnavailable(fromAppError({ code: 'NOT_AVAILABLE', message: 'there is no file dialog here' })), true);
  assert.equal(isUnavailable(fromAppError({ code: 'BUSY', message: 'the import dialog is open already' })), false);
  assert.equal(isUnavailable(new Error('NOT_AVAILABLE')), false);
  assert.equal(isUnavailable(null), false);
});
