export {
  EngineHost,
  startEngineWorker,
  type EngineCompletionEvent,
  type EngineCompletionRequest,
  type EngineDoneEvent,
  type EngineHostOptions,
  type EngineMemory,
  type EngineWorkerOptions,
  type RestartPolicy,
  type StartOptions,
} from './host.js';
