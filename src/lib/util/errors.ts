/**
 * Error codes shared by the core, the worker API, the CLI and the UI.
 *
 * Errors that cross a boundary (worker → UI, core → CLI) travel as data
 * `{ code, message }`: comlink only rethrows message/name/stack, so error classes
 * would be lost. Messages are full sentences: what was found and what to do.
 */

export const ERROR_CODES = [
  // model file problems
  'MODEL_EMPTY',
  'MODEL_NOT_ONNX',
  'MODEL_TRUNCATED',
  'MODEL_EXTERNAL_DATA',
  'MODEL_NO_GRAPH',
  'MODEL_INPUT_COUNT',
  'MODEL_INPUT_NOT_IMAGE',
  'MODEL_INPUT_SIZE_UNKNOWN',
  'MODEL_OUTPUT_NOT_CLASSES',
  'MODEL_CLASS_COUNT_MISMATCH',
  'MODEL_UNSUPPORTED',
  'MODEL_TOO_LARGE',
  'MODEL_SHA_MISMATCH',
  'MODEL_DOWNLOAD_FAILED',
  // downloads of registry files (images and models) from mirrors and public sources
  'DOWNLOAD_BLOCKED',
  'DOWNLOAD_OFFLINE',
  'DATA_SHA_MISMATCH',
  // data problems
  'DATA_EMPTY',
  'DATA_NOT_FOUND',
  'DATA_TOO_FEW_IMAGES',
  'IMAGE_UNREADABLE',
  'IMAGE_TOO_LARGE',
  'LABELS_INVALID',
  'LABELS_MISMATCH',
  // configuration problems
  'CONFIG_INVALID',
  'EXPORT_UNSUPPORTED',
  'ARG_INVALID',
  'FILE_NOT_FOUND',
  // engine / runtime
  'ENGINE_FAILED',
  'WEBGPU_UNAVAILABLE',
  'WORKER_CRASHED',
  'CANCELLED',
  'STORAGE_QUOTA',
  'STORAGE_FAILED',
  'STORAGE_OUTDATED',
  'STORAGE_BLOCKED',
  'INTERNAL',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export interface ErrorInfo {
  code: ErrorCode;
  message: string;
  /** true when the user can fix it (bad file, bad argument); false for bugs. */
  userError: boolean;
}

/** An error with a stable code. Throw it inside the core; convert to ErrorInfo at boundaries. */
export class QpError extends Error {
  readonly code: ErrorCode;
  readonly userError: boolean;
  constructor(code: ErrorCode, message: string, userError = code !== 'INTERNAL' && code !== 'ENGINE_FAILED') {
    super(message);
    this.name = 'QpError';
    this.code = code;
    this.userError = userError;
  }
}

/** Turn anything thrown into plain data that survives structured clone. */
export function toErrorInfo(e: unknown): ErrorInfo {
  if (e instanceof QpError) return { code: e.code, message: e.message, userError: e.userError };
  if (e && typeof e === 'object' && 'name' in e && (e as Error).name === 'AbortError') {
    return { code: 'CANCELLED', message: 'The run was cancelled.', userError: true };
  }
  const message = e instanceof Error ? e.message : String(e);
  return { code: 'INTERNAL', message: `Unexpected internal error: ${message}`, userError: false };
}

export type Result<T> = { ok: true; value: T } | { ok: false; error: ErrorInfo };

/** Run `fn` and return its value or its error as data (for worker and CLI boundaries). */
export async function asResult<T>(fn: () => Promise<T> | T): Promise<Result<T>> {
  try {
    return { ok: true, value: await fn() };
  } catch (e) {
    return { ok: false, error: toErrorInfo(e) };
  }
}

/** Throw a CANCELLED QpError when the signal is aborted. */
export function throwIfAborted(signal?: AbortSignal): void {
  if (signal?.aborted) throw new QpError('CANCELLED', 'The run was cancelled.');
}
