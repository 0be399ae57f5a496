/**
 * Two model loads in flight in the quantization worker (workers/api.ts): a link's silent
 * restore reading the cache while the student opens a file. The later load is the loaded
 * model, whichever finishes first; the earlier one answers CANCELLED and changes nothing.
 */
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createQuantApi } from '../../workers/api.ts';
import { tinyQdqPair } from '../support/tiny-qdq.ts';

const OTHER = new Uint8Array(readFileSync(join(import.meta.dirname, '../fixtures/bad-inputs/valid-tiny.onnx')));

describe('worker: overlapping model loads', () => {
  it('keeps the later load when the earlier one finishes last', async () => {
    const { parent } = tinyQdqPair();
    let release!: () => void;
    const held = new Promise<void>((r) => (release = r));
    // the cache read of the first load waits until the second load is done
    const storage = {
      putModel: async () => undefined,
      getModel: async (sha256: string) => {
        await held;
        return { sha256, bytes: OTHER, name: 'restored.onnx' };
      },
    };
    const api = createQuantApi({ storage: storage as never });
    const restore = api.loadModel({ kind: 'cached', sha256: 'a'.repeat(64) });
    const picked = await api.loadModel({ kind: 'bytes', bytes: parent, name: 'picked.onnx' });
    release();
    const restored = await restore;
    expect(picked.ok && picked.value.name).toBe('picked.onnx');
    expect(restored.ok).toBe(false);
    if (!restored.ok) {
      expect(restored.error.code).toBe('CANCELLED');
      expect(restored.error.message).toContain('another model was opened');
    }
    // the worker's loaded model is the picked one: the views read its graph, not the restored one's
    const only = createQuantApi({ storage: storage as never });
    await only.loadModel({ kind: 'bytes', bytes: parent, name: 'picked.onnx' });
    const other = createQuantApi({ storage: storage as never });
    await other.loadModel({ kind: 'bytes', bytes: OTHER, name: 'restored.onnx' });
    const graph = async (a: typeof api) => JSON.stringify(await a.layerGraph(true));
    expect(await graph(api)).toBe(await graph(only));
    expect(await graph(api)).not.toBe(await graph(other));
  });

  it('a load that is not overtaken becomes the loaded model', async () => {
    const storage = {
      putModel: async () => undefined,
      getModel: async (sha256: string) => ({ sha256, bytes: OTHER, name: 'cached.onnx' }),
    };
    const api = createQuantApi({ storage: storage as never });
    const r = await api.loadModel({ kind: 'cached', sha256: 'b'.repeat(64) });
    expect(r.ok && r.value.name).toBe('cached.onnx');
  });
});
