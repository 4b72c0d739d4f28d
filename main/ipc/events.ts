import { EventEmitter } from 'node:events';
import type { ApiEventName, ApiEvents } from './contract.js';

/** The events main pushes to the renderer, as one typed bus both transports subscribe to. */
export interface ApiEventBus {
  on<E extends ApiEventName>(event: E, listener: (payload: ApiEvents[E]) => void): () => void;
  emit<E extends ApiEventName>(event: E, payload: ApiEvents[E]): void;
}

export function createEventBus(): ApiEventBus {
  const emitter = new EventEmitter();
  // Every open window / browser tab adds a listener per event; the default warning at 10 is noise here.
  emitter.setMaxListeners(0);
  return {
    on(event, listener) {
      emitter.on(event, listener);
      return () => emitter.off(event, listener);
    },
    emit(event, payload) {
      // A failing listener (a closed socket, a destroyed window) must not stop delivery to the others.
      for (const listener of emitter.listeners(event)) {
        try {
          listener(payload);
        } catch (err) {
          console.error(`inkling: a listener for "${event}" failed:`, err);
        }
      }
    },
  };
}
