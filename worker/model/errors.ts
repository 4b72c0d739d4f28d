/** Why a model file or folder could not be used. Stable strings: callers (CLI, UI) switch on them. */
export type ModelFormatErrorCode =
  | 'missing_file'
  | 'truncated_file'
  | 'bad_header_length'
  | 'invalid_header'
  | 'unknown_dtype'
  | 'unsupported_dtype'
  | 'bad_offsets'
  | 'overlapping_tensors'
  | 'size_mismatch'
  | 'unknown_tensor'
  | 'invalid_config'
  | 'not_gpt2'
  | 'missing_tensor'
  | 'shape_mismatch'
  | 'config_mismatch'
  | 'too_large_for_backend';

/** A model file or folder that cannot be read as GPT-2. The message names the file, tensor or field. */
export class ModelFormatError extends Error {
  override readonly name = 'ModelFormatError';

  constructor(
    readonly code: ModelFormatErrorCode,
    message: string,
    /** The tensor the problem concerns, when there is one. */
    readonly tensor?: string,
  ) {
    super(message);
  }
}
