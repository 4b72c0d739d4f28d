/**
 * Browser mode: `InklingApi` over one WebSocket, speaking the contract's `WireRequest` / `WireMessage`.
 *
 * The socket opens at once and reopens after a drop (with growing pauses), so engine-status and completion
 * events keep flowing. Calls made while disconnected wait for the connection for a while, then fail with
 * a message saying so. Calls already sent when the socket drops fail at once: their answers are lost.
 */
import type {
  ApiEventName,
  ApiMethodName,
  AppError,
  AssistEvent,
  ModelProgressEvent,
  CompletionEvent,
  CompletionRequest,
  EngineStatus,
  FinetuneRun,
  InklingApi,
  WireMessage,
  WireRequest,
} from '../../../main/ipc/contract.js';

/** The part of the WebSocket API used here (the browser's, or the `ws` package's in tests). */
export interface SocketLike {
  readonly readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: 'open' | 'close' | 'error', listener: () => void): void;
  addEventListener(type: 'message', listener: (event: { data: unknown }) => void): void;
}
export type SocketFactory = new (url: string) => SocketLike;

export type ConnectionState = 'connecting' | 'open' | 'closed';

export interface WsApiOptions {
  WebSocket?: SocketFactory;
  /** How long a call made while disconnected waits for the connection before failing. */
  connectTimeoutMs?: number;
  minRetryMs?: number;
  maxRetryMs?: number;
}

export interface WsApi extends InklingApi {
  onConnectionChange(listener: (state: ConnectionState) => void): () => void;
  readonly connectionState: ConnectionState;
  /** Closes for good: no reconnecting, every waiting call fails. */
  close(): void;
}

/** A call the server answered with an error: `message` is the server's, `code` names the kind. */
export class ApiCallError extends Error {
  readonly code: string;
  constructor(error: AppError) {
    super(error.message);
    this.name = 'ApiCallError';
    this.code = error.code;
  }
}

const OPEN = 1;

interface Call {
  method: ApiMethodName;
  args: unknown[];
  resolve(value: unknown): void;
  reject(error: Error): void;
  sent: boolean;
  timer: ReturnType<typeof setTimeout> | null;
}

export function createWsApi(url: string, options: WsApiOptions = {}): WsApi {
  const maybeSocket = options.WebSocket ?? (globalThis.WebSocket as unknown as SocketFactory | undefined);
  if (!maybeSocket) throw new Error('createWsApi: no WebSocket implementation in this environment');
  const Socket: SocketFactory = maybeSocket;
  const connectTimeoutMs = options.connectTimeoutMs ?? 10_000;
  const minRetryMs = options.minRetryMs ?? 250;
  const maxRetryMs = options.maxRetryMs ?? 5_000;
  const where = url.replace(/([?&]token=)[^&]*/, '$1…');

  const calls = new Map<number, Call>();
  const completionListeners = new Set<(event: CompletionEvent) => void>();
  const statusListeners = new Set<(status: EngineStatus) => void>();
  const finetuneListeners = new Set<(run: FinetuneRun) => void>();
  const assistListeners = new Set<(event: AssistEvent) => void>();
  const modelListeners = new Set<(event: ModelProgressEvent) => void>();
  const connectionListeners = new Set<(state: ConnectionState) => void>();
  /** Completions started and not yet finished, so a drop can end them with an error event. */
  const liveCompletions = new Set<string>();
  let nextId = 1;
  let socket: SocketLike | null = null;
  let state: ConnectionState = 'connecting';
  let retryMs = minRetryMs;
  let retryTimer: ReturnType<typeof setTimeout> | null = null;
  let closedForGood = false;

  function setState(next: ConnectionState): void {
    if (next === state) return;
    state = next;
    for (const listener of connectionListeners) safely(() => listener(next));
  }

  function connect(): void {
    retryTimer = null;
    setState('connecting');
    const ws = new Socket(url);
    socket = ws;
    ws.addEventListener('open', () => {
      if (socket !== ws) return;
      retryMs = minRetryMs;
      setState('open');
      for (const [id, call] of calls) if (!call.sent) send(ws, id, call);
    });
    ws.addEventListener('message', (event) => {
      if (socket === ws) receive(event.data);
    });
    // 'error' is always followed by 'close', which does the work.
    ws.addEventListener('error', () => {});
    ws.addEventListener('close', () => {
      if (socket !== ws) return;
      socket = null;
      dropped();
    });
  }

  function dropped(): void {
    setState('closed');
    for (const [id, call] of calls) {
      if (!call.sent) continue;
      calls.delete(id);
      // Its rejection already tells the caller; no error event on top.
      if (call.method === 'complete') liveCompletions.delete((call.args[0] as CompletionRequest).requestId);
      call.reject(new Error(`The connection to the Inkling server was lost before "${call.method}" was answered`));
    }
    for (const requestId of liveCompletions) {
      emitCompletion({
        requestId,
        type: 'error',
        error: { code: 'DISCONNECTED', message: 'The connection to the Inkling server was lost during the suggestion' },
      });
    }
    liveCompletions.clear();
    if (closedForGood) return;
    retryTimer = setTimeout(connect, retryMs);
    retryMs = Math.min(maxRetryMs, retryMs * 2);
  }

  function send(ws: SocketLike, id: number, call: Call): void {
    const request: WireRequest = { kind: 'invoke', id, method: call.method, args: call.args };
    if (call.timer) clearTimeout(call.timer);
    call.timer = null;
    try {
      ws.send(JSON.stringify(request));
      call.sent = true;
    } catch (err) {
      calls.delete(id);
      call.reject(new Error(`Could not send "${call.method}" to the Inkling server: ${errorText(err)}`));
    }
  }

  function receive(data: unknown): void {
    let message: WireMessage;
    try {
      message = JSON.parse(typeof data === 'string' ? data : String(data)) as WireMessage;
    } catch {
      console.warn('Inkling: ignored a message from the server that is not JSON');
      return;
    }
    if (message.kind === 'result') {
      const call = calls.get(message.id);
      if (!call) return;
      calls.delete(message.id);
      if (message.ok) call.resolve(message.value);
      else call.reject(new ApiCallError(message.error));
    } else if (message.kind === 'event') {
      dispatch(message.event, message.payload);
    }
  }

  function dispatch(event: ApiEventName, payload: unknown): void {
    if (event === 'completion') {
      const completion = payload as CompletionEvent;
      if (completion.type !== 'delta') liveCompletions.delete(completion.requestId);
      emitCompletion(completion);
    } else if (event === 'engineStatus') {
      for (const listener of statusListeners) safely(() => listener(payload as EngineStatus));
    } else if (event === 'finetune') {
      for (const listener of finetuneListeners) safely(() => listener(payload as FinetuneRun));
    } else if (event === 'assist') {
      for (const listener of assistListeners) safely(() => listener(payload as AssistEvent));
    } else if (event === 'models') {
      for (const listener of modelListeners) safely(() => listener(payload as ModelProgressEvent));
    }
  }

  function emitCompletion(event: CompletionEvent): void {
    for (const listener of completionListeners) safely(() => listener(event));
  }

  function invoke<T>(method: ApiMethodName, args: unknown[]): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      if (closedForGood) {
        reject(new Error(`The Inkling connection is closed: cannot call "${method}"`));
        return;
      }
      const id = nextId++;
      const call: Call = { method, args, resolve: resolve as (value: unknown) => void, reject, sent: false, timer: null };
      calls.set(id, call);
      if (socket && socket.readyState === OPEN) {
        send(socket, id, call);
        return;
      }
      call.timer = setTimeout(() => {
        if (call.sent || !calls.has(id)) return;
        calls.delete(id);
        reject(new Error(`Cannot reach the Inkling server at ${where}: no connection after ${connectTimeoutMs / 1000} s ("${method}" not sent)`));
      }, connectTimeoutMs);
      if (!socket && retryTimer) {
        // Someone is waiting: try now rather than after the back-off.
        clearTimeout(retryTimer);
        connect();
      }
    });
  }

  connect();

  return {
    get connectionState() {
      return state;
    },
    listDocuments: (query) => invoke('listDocuments', query === undefined ? [] : [query]),
    getDocument: (id) => invoke('getDocument', [id]),
    createDocument: (title) => invoke('createDocument', title === undefined ? [] : [title]),
    saveDocument: (id, patch) => invoke('saveDocument', [id, patch]),
    deleteDocument: (id) => invoke('deleteDocument', [id]),
    restoreDocument: (id) => invoke('restoreDocument', [id]),
    listRevisions: (documentId) => invoke('listRevisions', [documentId]),
    restoreRevision: (documentId, revisionId) => invoke('restoreRevision', [documentId, revisionId]),
    getSettings: () => invoke('getSettings', []),
    updateSettings: (patch) => invoke('updateSettings', [patch]),
    getEngineStatus: () => invoke('getEngineStatus', []),
    async complete(request) {
      liveCompletions.add(request.requestId);
      try {
        await invoke<void>('complete', [request]);
      } catch (err) {
        liveCompletions.delete(request.requestId);
        throw err;
      }
    },
    cancelCompletion: (requestId) => invoke('cancelCompletion', [requestId]),
    onCompletion(listener) {
      completionListeners.add(listener);
      return () => completionListeners.delete(listener);
    },
    onEngineStatus(listener) {
      statusListeners.add(listener);
      return () => statusListeners.delete(listener);
    },
    planFinetune: (request) => invoke('planFinetune', [request]),
    startFinetune: (request) => invoke('startFinetune', [request]),
    pauseFinetune: (runId) => invoke('pauseFinetune', [runId]),
    resumeFinetune: (runId) => invoke('resumeFinetune', [runId]),
    cancelFinetune: (runId) => invoke('cancelFinetune', [runId]),
    listFinetuneRuns: () => invoke('listFinetuneRuns', []),
    deleteFinetuneRun: (runId) => invoke('deleteFinetuneRun', [runId]),
    listStyles: () => invoke('listStyles', []),
    activateStyle: (styleId) => invoke('activateStyle', [styleId]),
    renameStyle: (styleId, name) => invoke('renameStyle', [styleId, name]),
    deleteStyle: (styleId) => invoke('deleteStyle', [styleId]),
    exportStyle: (styleId, dir) => invoke('exportStyle', dir === undefined ? [styleId] : [styleId, dir]),
    onFinetune(listener) {
      finetuneListeners.add(listener);
      return () => finetuneListeners.delete(listener);
    },
    listTemplates: () => invoke('listTemplates', []),
    saveTemplate: (input) => invoke('saveTemplate', [input]),
    deleteTemplate: (id) => invoke('deleteTemplate', [id]),
    resetTemplate: (id) => invoke('resetTemplate', [id]),
    runTemplate: (request) => invoke('runTemplate', [request]),
    cancelAssist: (requestId) => invoke('cancelAssist', [requestId]),
    classifyTone: (text) => invoke('classifyTone', [text]),
    onAssist(listener) {
      assistListeners.add(listener);
      return () => assistListeners.delete(listener);
    },
    listModels: () => invoke('listModels', []),
    inspectModel: (path) => invoke('inspectModel', [path]),
    importModel: (path, name) => invoke('importModel', name === undefined ? [path] : [path, name]),
    listModelDownloads: () => invoke('listModelDownloads', []),
    downloadModel: (repo) => invoke('downloadModel', [repo]),
    cancelDownload: (repo) => invoke('cancelDownload', [repo]),
    activateModel: (id) => invoke('activateModel', [id]),
    deleteModel: (id) => invoke('deleteModel', [id]),
    // Answered by the server, which reports NOT_AVAILABLE: a browser cannot open a dialog on the server's machine.
    pickImportSource: (kind) => invoke('pickImportSource', kind === undefined ? [] : [kind]),
    onModels(listener) {
      modelListeners.add(listener);
      return () => modelListeners.delete(listener);
    },
    onConnectionChange(listener) {
      connectionListeners.add(listener);
      return () => connectionListeners.delete(listener);
    },
    close() {
      closedForGood = true;
      if (retryTimer) clearTimeout(retryTimer);
      retryTimer = null;
      for (const [id, call] of calls) {
        if (call.timer) clearTimeout(call.timer);
        calls.delete(id);
        call.reject(new Error(`The Inkling connection was closed before "${call.method}" was answered`));
      }
      const ws = socket;
      socket = null;
      ws?.close();
      setState('closed');
    },
  };
}

function safely(fn: () => void): void {
  try {
    fn();
  } catch (err) {
    console.error('Inkling: an event listener failed', err);
  }
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
