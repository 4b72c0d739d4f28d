// A stand-in `window.inkling` for browser tests of the renderer: documents, revisions and settings in
// memory, and a fake engine that streams canned suggestions. Injected before the page's own scripts
// (Playwright addInitScript), so the built renderer runs unchanged. Plain JS: it is sent to the page as is.
// `window.__inklingMock` lets a test look at what the renderer asked for and steer the replies.
(() => {
  const DAY = 86_400_000;
  const now = Date.now();
  const docs = new Map();
  const trash = new Map();
  const revisions = new Map();
  let nextRevision = 1;
  let nextDoc = 1;

  const mock = {
    requests: [],
    cancels: [],
    saves: [],
    settingsUpdates: [],
    /** Reply for a prompt: [first alternative, ...more]. Tests may replace it. */
    reply(prefix, n) {
      const lead = /\s$/.test(prefix) ? '' : ' ';
      const all = [`${lead}the light came in slowly.`, `${lead}the kettle began to sing.`, `${lead}nobody else was awake.`];
      return all.slice(0, Math.max(1, n));
    },
    chunkDelayMs: 12,
    latencyMs: 64,
    /** pickImportSource: what the "dialog" answers (a path, or null for cancel); 'unavailable' as in browser mode. */
    pickAnswer: null,
    picks: [],
    imports: [],
    /**
     * While true, an import stops between its two progress steps until `releaseImport()`: a test sees the
     * progress for certain (a fixed 50 ms could pass between two of a loaded machine's checks).
     */
    holdImports: false,
    releaseImport: null,
  };
  window.__inklingMock = mock;

  const settings = {
    decoding: {
      temperature: 0.8,
      topK: 40,
      topP: 0.92,
      repetitionPenalty: 1.15,
      noRepeatNgramSize: 3,
      maxNewTokens: 16,
      numAlternatives: 3,
      doSample: true,
    },
    suggestionDelayMs: 250,
    stopAtSentenceEnd: true,
    suggestionsEnabled: true,
    checkForUpdates: false,
    toneLabels: ['formal', 'casual', 'neutral'],
    toneTemplate: 'Text: {text}\nTone:',
    toneCalibrate: true,
    precision: 'exact',
  };

  let engine = {
    state: 'loading',
    backend: '',
    backendReason: '',
    modelName: 'gpt2 (124M)',
    error: null,
  };

  const completionListeners = new Set();
  const statusListeners = new Set();
  const emitStatus = () => statusListeners.forEach((l) => l(structuredClone(engine)));
  const emitCompletion = (e) => completionListeners.forEach((l) => l(structuredClone(e)));
  setTimeout(() => {
    engine = {
      ...engine,
      state: 'ready',
      backend: 'wasm',
      backendReason: 'tfjs-node is not installed: using WebAssembly (SIMD)',
      threads: 2,
      threadsNote: null,
      precision: 'exact',
      precisionNote: null,
      nativeKernels: true,
      nativeKernelsNote: null,
    };
    emitStatus();
  }, 150);

  function summary(doc) {
    return {
      id: doc.id,
      title: doc.title,
      createdAt: doc.createdAt,
      updatedAt: doc.updatedAt,
      snippet: doc.body.slice(0, 160).replace(/\s+/g, ' ').trim(),
    };
  }
  const full = (doc) => ({ ...summary(doc), body: doc.body });

  function addRevision(doc, at) {
    const list = revisions.get(doc.id) ?? [];
    list.unshift({ id: nextRevision++, documentId: doc.id, title: doc.title, createdAt: at, length: doc.body.length, body: doc.body });
    revisions.set(doc.id, list.slice(0, 30));
  }

  function seed(title, body, age) {
    const id = `doc-${nextDoc++}`;
    const doc = { id, title, body, createdAt: now - age - DAY, updatedAt: now - age };
    docs.set(id, doc);
    addRevision({ ...doc, body: body.slice(0, Math.floor(body.length * 0.6)) }, now - age - 3 * 3_600_000);
    addRevision(doc, now - age);
    return doc;
  }

  seed(
    'A slow morning',
    'The house was still when I came down the stairs. Outside, the garden held on to the last of the night, ' +
      'and the window above the sink was beginning to turn from grey to a pale, uncertain blue.\n\n' +
      'I filled the kettle and stood there a while, listening to the pipes wake up. There is a particular kind of ' +
      'quiet before anyone else is awake, and for a few minutes it feels like the whole day is still undecided.\n\n' +
      'By the time the water boiled,',
    2 * 60_000,
  );
  seed(
    'Letter to Mira',
    'Dear Mira,\n\nThank you for the postcard from Lisbon — it is pinned above my desk now, next to the map ' +
      'of the coast you drew for me last spring. I keep meaning to write back properly.',
    3 * 3_600_000,
  );
  seed('黄昏的散步 · Walk at dusk', '我们沿着河边慢慢走，天色一点点暗下来。🌆 Then the lamps came on, one by one.', 2 * DAY);
  seed('Notes — שלום', 'שלום עולם. Mixed-direction notes for the translation project: keep the tone warm and plain.', 9 * DAY);

  const find = (id) => {
    const doc = docs.get(id);
    if (!doc) throw new Error(`no document with id "${id}"`);
    return doc;
  };
  const later = (value) => new Promise((resolve) => setTimeout(() => resolve(structuredClone(value)), 2));

  const running = new Map();
  function stopRun(requestId, emit) {
    const timers = running.get(requestId);
    if (!timers) return;
    timers.forEach(clearTimeout);
    running.delete(requestId);
    if (emit) emitCompletion({ requestId, type: 'cancelled' });
  }

  window.inkling = {
    async listDocuments(query) {
      const q = (query ?? '').trim().toLowerCase();
      const list = [...docs.values()]
        .filter((d) => q === '' || d.title.toLowerCase().includes(q) || d.body.toLowerCase().includes(q))
        .sort((a, b) => b.updatedAt - a.updatedAt)
        .map(summary);
      return later(list);
    },
    async getDocument(id) {
      const doc = docs.get(id);
      return later(doc ? full(doc) : null);
    },
    async createDocument(title) {
      const at = Date.now();
      const doc = { id: `doc-${nextDoc++}`, title: title ?? '', body: '', createdAt: at, updatedAt: at };
      docs.set(doc.id, doc);
      return later(full(doc));
    },
    async saveDocument(id, patch) {
      const doc = find(id);
      mock.saves.push({ id, patch: { ...patch, body: patch.body === undefined ? undefined : patch.body.length } });
      Object.assign(doc, patch, { updatedAt: Date.now() });
      if (patch.body !== undefined) addRevision(doc, doc.updatedAt);
      return later(summary(doc));
    },
    async deleteDocument(id) {
      trash.set(id, find(id));
      docs.delete(id);
      return later(undefined);
    },
    async restoreDocument(id) {
      const doc = trash.get(id);
      if (!doc) throw new Error(`no document "${id}" in the trash`);
      trash.delete(id);
      docs.set(id, doc);
      return later(summary(doc));
    },
    async listRevisions(documentId) {
      return later((revisions.get(documentId) ?? []).map(({ body: _body, ...rest }) => rest));
    },
    async restoreRevision(documentId, revisionId) {
      const doc = find(documentId);
      const revision = (revisions.get(documentId) ?? []).find((r) => r.id === revisionId);
      if (!revision) throw new Error(`no revision ${revisionId}`);
      doc.body = revision.body;
      doc.title = revision.title;
      doc.updatedAt = Date.now();
      addRevision(doc, doc.updatedAt);
      return later(full(doc));
    },
    async getSettings() {
      return later(settings);
    },
    async updateSettings(patch) {
      mock.settingsUpdates.push(structuredClone(patch));
      Object.assign(settings, { ...patch, decoding: { ...settings.decoding, ...patch.decoding } });
      return later(settings);
    },
    async getEngineStatus() {
      return later(engine);
    },
    async complete(request) {
      mock.requests.push({ ...request, prefix: request.prefix.slice(-80), prefixLength: request.prefix.length });
      // Latest wins, as in main.
      for (const id of [...running.keys()]) stopRun(id, true);
      if (request.prefillOnly) {
        // The engine only runs the prompt: done, with nothing to show.
        setTimeout(() => emitCompletion({ requestId: request.requestId, type: 'done', alternatives: [], latencyMs: mock.latencyMs, reusedTokens: 0 }), mock.chunkDelayMs);
        return later(undefined);
      }
      const n = request.numAlternatives ?? 1;
      const alternatives = mock.reply(request.prefix, n);
      const timers = [];
      running.set(request.requestId, timers);
      if (n === 1) {
        const words = alternatives[0].match(/\s*\S+/g) ?? [];
        words.forEach((word, i) => {
          timers.push(setTimeout(() => emitCompletion({ requestId: request.requestId, type: 'delta', alternative: 0, text: word }), mock.chunkDelayMs * (i + 1)));
        });
      }
      const end = mock.chunkDelayMs * ((alternatives[0].match(/\s*\S+/g) ?? []).length + 1);
      timers.push(
        setTimeout(() => {
          running.delete(request.requestId);
          emitCompletion({ requestId: request.requestId, type: 'done', alternatives, latencyMs: mock.latencyMs, reusedTokens: 0 });
        }, end),
      );
      return later(undefined);
    },
    async cancelCompletion(requestId) {
      mock.cancels.push(requestId);
      stopRun(requestId, true);
      return later(undefined);
    },
    onCompletion(listener) {
      completionListeners.add(listener);
      return () => completionListeners.delete(listener);
    },
    onEngineStatus(listener) {
      statusListeners.add(listener);
      return () => statusListeners.delete(listener);
    },
    // Assist: no templates, a canned tone; runs answer with an error (the UI tests do not use them).
    async listTemplates() {
      return later([]);
    },
    async runTemplate(request) {
      setTimeout(() => {
        for (const listener of assistListeners) listener({ requestId: request.requestId, type: 'error', error: { code: 'MOCK', message: 'not in the mock' } });
      }, 0);
      return later(undefined);
    },
    async cancelAssist() {
      return later(undefined);
    },
    async classifyTone() {
      return later({ label: 'neutral', calibrated: true, scores: [{ label: 'neutral', probability: 1, uncalibratedProbability: 1 }] });
    },
    onAssist(listener) {
      assistListeners.add(listener);
      return () => assistListeners.delete(listener);
    },
    async listModels() {
      return later(importedModels.slice());
    },
    async listStyles() {
      return later([]);
    },
    async inspectModel() {
      return Promise.reject(new Error('not in the mock'));
    },
    // Imports "copy" in two progress steps and add a row to the list.
    async importModel(source, name) {
      mock.imports.push(source);
      const total = 6_545_841;
      const id = name || source.split('/').pop();
      for (const listener of modelListeners) listener({ jobId: source, kind: 'import', state: 'running', bytes: total / 2, totalBytes: total });
      await new Promise((resolve) => {
        if (mock.holdImports) mock.releaseImport = resolve;
        else setTimeout(resolve, 50);
      });
      const model = { id, name: id, source: 'imported', origin: source, shape: '2 layers × 32, 4 heads, context 64, vocabulary 50257', parameters: 1_635_744, sizeBytes: total, memoryBytes: 19_507_072, active: false, createdAt: Date.now() };
      importedModels.unshift(model);
      for (const listener of modelListeners) listener({ jobId: source, kind: 'import', state: 'done', bytes: total, totalBytes: total, model });
      return model;
    },
    async pickImportSource(kind) {
      mock.picks.push(kind ?? null);
      if (mock.pickAnswer === 'unavailable') {
        return Promise.reject(Object.assign(new Error('there is no file dialog here: type or paste the path of the folder or .safetensors file'), { code: 'NOT_AVAILABLE' }));
      }
      return later(mock.pickAnswer);
    },
    async listModelDownloads() {
      return later([]);
    },
    async downloadModel() {
      return Promise.reject(new Error('not in the mock'));
    },
    async cancelDownload() {
      return later(undefined);
    },
    async activateModel() {
      return Promise.reject(new Error('not in the mock'));
    },
    async deleteModel() {
      return Promise.reject(new Error('not in the mock'));
    },
    onModels(listener) {
      modelListeners.add(listener);
      return () => modelListeners.delete(listener);
    },
  };
  const assistListeners = new Set();
  const modelListeners = new Set();
  const importedModels = [];
})();
