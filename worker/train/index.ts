// The training engine's public API: data → plan → run (events, pause/cancel, checkpoints) → export.
export { buildDataset, makeBatch, BatchSchedule, TrainingDataError, type Dataset, type DatasetOptions, type TrainingText, type Block, type Batch, type SplitKind } from './data.js';
export {
  resolveTrainingOptions,
  datasetOptions,
  planTraining,
  prepareTraining,
  TrainingOptionsError,
  type TrainingOptions,
  type ResolvedTrainingOptions,
  type TrainingMethod,
  type TrainingPlan,
} from './options.js';
export { runTraining, CheckpointMismatchError, type TrainingEvent, type TrainingProgress, type TrainingResult, type TrainingRunInit } from './trainer.js';
export { TrainingControl, type CancelOptions } from './control.js';
export {
  FileCheckpointSink,
  MemoryCheckpointSink,
  CHECKPOINT_FORMAT,
  type CheckpointSink,
  type TrainingCheckpoint,
  type CheckpointMeta,
  type CheckpointTensor,
  type CheckpointReason,
  type TrainingStatus,
  type HistoryEntry,
} from './checkpoint.js';
export { evaluateLoss, type EvaluateOptions } from './evaluate.js';
export { exportHuggingFace, exportTrainedModel, type ExportOptions } from './export.js';
export { TrainedWeights } from './weights.js';
export { DEFAULT_LORA, LORA_MODULES, parseLoraTargets, mergeLora, type LoraConfig, type LoraModule } from './lora.js';
export { paramMapOf, modelFromParams } from './params.js';
export { batchLoss, forwardLogits, forwardHidden, type ParamMap, type ForwardContext } from './forward.js';
export { AdamW, clipByGlobalNorm, learningRateAt, type AdamWConfig, type ScheduleConfig } from './optimizer.js';
export { registerGradients } from './gradients.js';
