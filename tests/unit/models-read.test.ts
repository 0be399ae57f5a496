/**
 * Model bytes from files and downloads: size limits before reading, downloads that stop
 * half-way (connection error, or fewer bytes than announced), too-large bodies stopped
 * while streaming, and the structural limits of a decoded model.
 */
import { describe, expect, it } from 'vitest';
import { readModelBody, readModelFile } from '../../src/lib/data/read-model.ts';
import { checkModelSize, declaredBytes, MAX_GRAPH_NODES, MAX_MODEL_BYTES } from '../../src/lib/onnx/limits.ts';
import { QpError } from '../../src/lib/util/errors.ts';

async function codeOf(p: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (e) {
    return e instanceof QpError ? `${e.code}: ${e.message}` : `not a QpError: ${String(e)}`;
  }
  return 'no error';
}

/** A Response whose body yields `chunks` and then either ends or fails like a dropped connection. */
function response(chunks: Uint8Array[], end: 'close' | 'error', pulled: { n: number } = { n: 0 }): Response {
  let i = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(c) {
      pulled.n++;
      if (i < chunks.length) c.enqueue(chunks[i++]);
      else if (end === 'close') c.close();
      else c.error(new TypeError('network error'));
    },
  });
  return new Response(body);
}
const bytes = (n: number) => new Uint8Array(n).fill(8);

describe('model size limit', () => {
  it('accepts MAX_MODEL_BYTES and refuses one byte more, naming the file', async () => {
    expect(() => checkModelSize(MAX_MODEL_BYTES)).not.toThrow();
    expect(await codeOf(() => checkModelSize(MAX_MODEL_BYTES + 1, 'vgg16.onnx'))).toMatch(
      /^MODEL_TOO_LARGE: The model file "vgg16\.onnx" is 268\.4 MB, more than the 268\.4 MB/,
    );
  });

  it('refuses a File by its size without reading it', async () => {
    let read = false;
    const fake = {
      name: 'big.onnx',
      size: 300e6,
      arrayBuffer: async () => ((read = true), new ArrayBuffer(0)),
    } as unknown as Blob;
    expect(await codeOf(readModelFile(fake))).toMatch(/^MODEL_TOO_LARGE: .*"big\.onnx" is 300 MB/);
    expect(read).toBe(false);
    expect(await codeOf(readModelFile(new File([], 'empty.onnx')))).toMatch(/^MODEL_EMPTY/);
    expect(await readModelFile(new File([bytes(10)], 'ok.onnx'))).toEqual(bytes(10));
  });

  it('declared tensor sizes: negative dims are NaN, overflow is Infinity', () => {
    expect(declaredBytes({ dataType: 1, dims: [2, 3] })).toBe(24);
    expect(declaredBytes({ dataType: 1, dims: [-1, 3] })).toBeNaN();
    expect(declaredBytes({ dataType: 1, dims: [2 ** 30, 2 ** 30, 2 ** 10] })).toBe(Infinity);
    expect(declaredBytes({ dataType: 8, dims: [4] })).toBeUndefined(); // strings have no fixed size
    expect(MAX_GRAPH_NODES).toBeLessThan(10_000);
  });
});

describe('readModelBody', () => {
  const opts = { name: 'm.onnx', url: 'https://example.org/m.onnx' };

  it('returns the whole body and reports the final progress', async () => {
    const seen: number[] = [];
    const out = await readModelBody(response([bytes(3), bytes(4)], 'close'), {
      ...opts,
      total: 7,
      onProgress: (p) => seen.push(p.loaded),
    });
    expect(out).toEqual(bytes(7));
    expect(seen.at(-1)).toBe(7);
  });

  it('a connection dropped half-way is MODEL_DOWNLOAD_FAILED saying how far it got', async () => {
    const msg = await codeOf(readModelBody(response([bytes(500_000)], 'error'), { ...opts, total: 1_000_000 }));
    expect(msg).toMatch(
      /^MODEL_DOWNLOAD_FAILED: The download of "m\.onnx" from https:\/\/example\.org\/m\.onnx stopped after 0\.5 MB of 1 MB \(the connection failed: network error\)\. Nothing was stored; load it again to retry\.$/,
    );
  });

  it('fewer bytes than announced is an interrupted download, not a model', async () => {
    expect(await codeOf(readModelBody(response([bytes(10)], 'close'), { ...opts, total: 20 }))).toMatch(
      /^MODEL_DOWNLOAD_FAILED: .*closed the connection early/,
    );
  });

  it('refuses an announced size over the limit before reading, and stops a body that passes it', async () => {
    const pulled = { n: 0 };
    expect(await codeOf(readModelBody(response([bytes(1)], 'close', pulled), { ...opts, total: 300e6 }))).toMatch(
      /^MODEL_TOO_LARGE/,
    );
    expect(pulled.n).toBeLessThanOrEqual(1); // a ReadableStream pulls once on its own; we read nothing
    const chunk = bytes(64 * 1024 * 1024);
    const stream = { n: 0 };
    const five = response([chunk, chunk, chunk, chunk, chunk, chunk], 'close', stream);
    expect(await codeOf(readModelBody(five, opts))).toMatch(/^MODEL_TOO_LARGE/);
    expect(stream.n).toBeLessThanOrEqual(6); // stopped at the 5th chunk (320 MiB), not drained
  });

  it('a cancelled download is CANCELLED', async () => {
    const ac = new AbortController();
    ac.abort();
    expect(await codeOf(readModelBody(response([bytes(1)], 'close'), { ...opts, signal: ac.signal }))).toMatch(
      /^CANCELLED/,
    );
  });
});
