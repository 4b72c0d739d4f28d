/**
 * Builds the `InklingApi` the preload exposes, from an `ipcRenderer`-like object. Kept apart from the preload
 * so that it can be tested without Electron. It must import nothing but the contract and the error helpers
 * (no Node built-ins): it is bundled into the sandboxed preload, where only `electron` can be required.
 */
import {
  API_METHODS,
  ipcChannel,
  type ApiEventName,
  type ApiEvents,
  type ApiHandlers,
  type InklingApi,
} from '../ipc/contract.js';
import { fromAppError, type Outcome } from '../ipc/errors.js';

export interface IpcRendererLike {
  invoke(channel: string, ...args: unknown[]): Promise<unknown>;
  on(channel: string, listener: (event: unknown, payload: unknown) => void): unknown;
  removeListener(channel: string, listener: (event: unknown, payload: unknown) => void): unknown;
}

function unwrap(outcome: unknown): unknown {
  const result = outcome as Outcome;
  if (result && result.ok === true) return result.value;
  if (result && result.ok === false) throw fromAppError(result.error);
  throw new Error('unexpected reply from the main process');
}

export function createInklingApi(ipc: IpcRendererLike): InklingApi {
  const methods = {} as Record<keyof ApiHandlers, (...args: unknown[]) => Promise<unknown>>;
  for (const method of API_METHODS) {
    methods[method] = async (...args) => unwrap(await ipc.invoke(ipcChannel(method), ...args));
  }
  // The page gets the payload only, never Electron's event object (it would expose `sender`).
  const subscribe = <E extends ApiEventName>(event: E, listener: (payload: ApiEvents[E]) => void) => {
    const wrapped = (_event: unknown, payload: unknown) => listener(payload as ApiEvents[E]);
    ipc.on(ipcChannel(event), wrapped);
    return () => void ipc.removeListener(ipcChannel(event), wrapped);
  };
  return {
    ...(methods as unknown as ApiHandlers),
    onCompletion: (listener) => subscribe('completion', listener),
    onEngineStatus: (listener) => subscribe('engineStatus', listener),
    onFinetune: (listener) => subscribe('finetune', listener),
    onAssist: (listener) => subscribe('assist', listener),
    onModels: (listener) => subscribe('models', listener),
  };
}
