/**
 * Reading model bytes safely, from a file or a download. A file is refused by its size
 * before it is read (a 300 MB File costs nothing until read). A download is refused
 * before the first byte when the announced size is over MAX_MODEL_BYTES, stopped as
 * soon as the bytes received pass it (a server may announce nothing or lie), and a download that stops half-way (the
 * connection closes, or fewer bytes arrive than Content-Length announced) becomes one
 * MODEL_DOWNLOAD_FAILED sentence instead of a half model that reaches the parser or the
 * cache. The caller stores nothing unless this returns.
 * Must not: cache, hash or parse (the caller does, with the complete bytes only).
 */
import { QpError, throwIfAborted } from '../util/errors.ts';
import { checkModelSize, MAX_MODEL_BYTES } from '../onnx/limits.ts';

export interface BodyProgress {
  loaded: number;
  total?: number;
}

const MB = (n: number) => `${(n / 1e6).toLocaleString('en', { maximumFractionDigits: 1 })} MB`;

function stopped(name: string, url: string, loaded: number, total: number | undefined, why: string): QpError {
  return new QpError(
    'MODEL_DOWNLOAD_FAILED',
    `The download of "${name}" from ${url} stopped after ${MB(loaded)}${total ? ` of ${MB(total)}` : ''} (${why}). Nothing was stored; load it again to retry.`,
  );
}

/**
 * The whole body of a model download. `total` is the size announced (Content-Length or a
 * registry's size); when given, fewer bytes is an interrupted download. Reports progress
 * at most every 100 ms. Throws QpError MODEL_TOO_LARGE, MODEL_DOWNLOAD_FAILED, CANCELLED.
 */
export async function readModelBody(
  res: Response,
  opts: { name: string; url: string; signal?: AbortSignal; total?: number; onProgress?: (p: BodyProgress) => void },
): Promise<Uint8Array> {
  const { name, url, signal, total, onProgress } = opts;
  if (total !== undefined) checkModelSize(total, name);
  if (!res.body) return new Uint8Array(await res.arrayBuffer());
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let loaded = 0;
  let lastReport = 0;
  try {
    for (;;) {
      throwIfAborted(signal);
      let step: ReadableStreamReadResult<Uint8Array>;
      try {
        step = await reader.read();
      } catch (e) {
        if ((e as Error).name === 'AbortError') throw e;
        throw stopped(name, url, loaded, total, `the connection failed: ${(e as Error).message || String(e)}`);
      }
      if (step.done) break;
      chunks.push(step.value);
      loaded += step.value.byteLength;
      if (loaded > MAX_MODEL_BYTES) checkModelSize(loaded, name);
      const now = performance.now();
      if (onProgress && now - lastReport > 100) {
        lastReport = now;
        onProgress({ loaded, total });
      }
    }
  } finally {
    // Stop the transfer when we leave early (too large, cancelled, failed).
    reader.cancel().catch(() => undefined);
  }
  if (total !== undefined && loaded < total)
    throw stopped(name, url, loaded, total, 'the server closed the connection early');
  const out = new Uint8Array(loaded);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.byteLength;
  }
  onProgress?.({ loaded, total });
  return out;
}

/**
 * The bytes of a model file the user opened or dropped, refused by size before reading.
 * Throws QpError MODEL_TOO_LARGE, MODEL_EMPTY.
 */
export async function readModelFile(file: Blob & { name?: string }): Promise<Uint8Array> {
  const name = file.name || 'model.onnx';
  checkModelSize(file.size, name);
  if (file.size === 0)
    throw new QpError('MODEL_EMPTY', `The model file "${name}" is empty (0 bytes). Pick the .onnx file itself.`);
  return new Uint8Array(await file.arrayBuffer());
}
