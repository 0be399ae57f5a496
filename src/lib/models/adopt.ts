/**
 * The one path every model source ends in (a file, the cache, a registry download, a URL):
 * sniff the bytes, check the size, hash them, verify what the source promised (a download's
 * size and sha256, a link's sha256), parse, check it is an image classifier, and name it
 * (registry model or user file). Pure apart from Web Crypto; the worker caches and keeps
 * what this returns.
 */
import type { LoadedModel } from '../protocol/api.ts';
import { checkModelSize } from '../onnx/limits.ts';
import type { Graph } from '../onnx/ir.ts';
import { parseModel } from '../onnx/model.ts';
import { identifyModel, sha256Hex, sniffOnnx, verifyExpected, verifyLinkedModel } from './identify.ts';
import type { ModelSpec } from './types.ts';
import { validateClassifier } from './validate.ts';

export interface AdoptOptions {
  /** a download's promised size and sha256 */
  expect?: { bytes: number; sha256: string };
  /** the sha256 a link names */
  expectSha256?: string;
  /** the bytes' sha256 when already known (the cache's key) */
  sha256?: string;
}

/** What the app learns of a model and the spec the pipeline runs it with. */
export interface AdoptedModel {
  info: Omit<LoadedModel, 'fromCache'>;
  spec: ModelSpec;
  /** the parsed model (callers that read more of it need not parse it again) */
  graph: Graph;
}

/** Throws the QpError of the first check that fails (not ONNX, too large, wrong hash, not a classifier…). */
export async function adoptModel(bytes: Uint8Array, name: string, opts: AdoptOptions = {}): Promise<AdoptedModel> {
  sniffOnnx(bytes, name);
  checkModelSize(bytes.byteLength, name);
  const sha256 = opts.sha256 ?? (await sha256Hex(bytes));
  if (opts.expect) verifyExpected(bytes, sha256, opts.expect, name);
  if (opts.expectSha256) verifyLinkedModel(sha256, opts.expectSha256, name);
  const graph = parseModel(bytes);
  const cls = validateClassifier(graph);
  const { entry, spec } = await identifyModel(bytes, graph, cls.classes, { name, sha256 });
  return {
    info: {
      id: spec.id,
      name: entry ? entry.label : name,
      sha256,
      size: bytes.byteLength,
      verified: !entry ? 'unknown' : entry.downloads.some((d) => d.sha256 === sha256) ? 'match' : 'copy',
      inputName: cls.inputName,
      outputName: cls.outputName,
      classes: cls.classes,
    },
    spec,
    graph,
  };
}
