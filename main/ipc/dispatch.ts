import { API_METHODS, type ApiHandlers, type ApiMethodName } from './contract.js';
import { ApiError, settle, type Outcome } from './errors.js';

export function isApiMethod(name: unknown): name is ApiMethodName {
  return typeof name === 'string' && (API_METHODS as readonly string[]).includes(name);
}

/**
 * Calls one handler by name with arguments from an untrusted sender and always resolves to an `Outcome`:
 * both transports share it, so a method behaves the same over Electron IPC and over the WebSocket.
 */
export function dispatch(handlers: ApiHandlers, method: unknown, args: unknown): Promise<Outcome> {
  return settle(() => {
    if (!isApiMethod(method)) throw new ApiError('UNKNOWN_METHOD', `no API method named ${JSON.stringify(String(method).slice(0, 64))}`);
    if (!Array.isArray(args)) throw new ApiError('INVALID_INPUT', `arguments of ${method} must be an array`);
    const handler = handlers[method] as (...a: unknown[]) => Promise<unknown>;
    return handler(...args);
  });
}
