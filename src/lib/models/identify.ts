/**
 * Model identity, shared by the CLI and the browser worker: cheap byte sniffing before
 * parsing, the sha256 of the file, and the match against the model registry. One model
 * id for a file on both sides — the registry id when the bytes are a known file, else
 * `sha256:<full hex>` — so a config made by the CLI names the same model (and gets the
 * same configHash) as one made in the browser.
 */
import { QpError } from '../util/errors.ts';
import { sha256Hex } from '../util/sha256.ts';
import { TORCHVISION_SPEC } from '../data/preprocess.ts';
import type { PreprocessSpec } from '../data/types.ts';
import type { Graph } from '../onnx/ir.ts';
import { findModelBySha256, toModelSpec, type ModelEntry } from './registry.ts';
import type { ModelSpec } from './types.ts';

/** Hex sha256 of `bytes` (Web Crypto: the same in Node and in a worker). */
export { sha256Hex };

/** The model id of a file that is not in the registry. */
export function userModelId(sha256: string): string {
  return `sha256:${sha256}`;
}

/**
 * Cheap checks on the first bytes before parsing: an empty file, an HTML page (a dev
 * server answers a missing file with index.html and status 200), a Git LFS pointer, or
 * something that cannot start an ONNX ModelProto. Throws MODEL_EMPTY / MODEL_NOT_ONNX.
 */
export function sniffOnnx(bytes: Uint8Array, name: string): void {
  if (bytes.byteLength === 0)
    throw new QpError('MODEL_EMPTY', `The model file "${name}" is empty (0 bytes). Pick the .onnx file itself.`);
  const head = new TextDecoder().decode(bytes.subarray(0, 256)).trimStart().toLowerCase();
  if (head.startsWith('<!doctype html') || head.startsWith('<html') || head.startsWith('<')) {
    throw new QpError(
      'MODEL_NOT_ONNX',
      `"${name}" is a web page, not an ONNX model: the server answered with HTML (often its fallback page for a file that does not exist). Check the URL or file name.`,
    );
  }
  if (head.startsWith('version https://git-lfs')) {
    throw new QpError(
      'MODEL_NOT_ONNX',
      `"${name}" is a Git LFS pointer, not the model itself. Download the real file (git lfs pull, or the "resolve" URL).`,
    );
  }
  // field 1 ir_version (0x08) usually comes first; other ModelProto fields may lead
  if (
    bytes[0] !== 0x08 &&
    bytes[0] !== 0x0a &&
    bytes[0] !== 0x12 &&
    bytes[0] !== 0x1a &&
    bytes[0] !== 0x3a &&
    bytes[0] !== 0x42
  ) {
    throw new QpError(
      'MODEL_NOT_ONNX',
      `"${name}" does not look like an ONNX model (it starts with byte 0x${bytes[0].toString(16).padStart(2, '0')}). Pick an .onnx file.`,
    );
  }
}

/**
 * Checks a downloaded file against the size and sha256 its source promised.
 * Throws MODEL_SHA_MISMATCH naming both.
 */
export function verifyExpected(
  bytes: Uint8Array,
  sha256: string,
  expect: { bytes: number; sha256: string },
  name: string,
): void {
  if (bytes.byteLength !== expect.bytes || sha256 !== expect.sha256) {
    throw new QpError(
      'MODEL_SHA_MISMATCH',
      `The downloaded file "${name}" is not the expected one: ${bytes.byteLength.toLocaleString('en')} bytes with sha256 ${sha256.slice(0, 12)}…, expected ${expect.bytes.toLocaleString('en')} bytes with sha256 ${expect.sha256.slice(0, 12)}…. The source may have changed; download it yourself and open it as a file.`,
    );
  }
}

/**
 * A shared link names its model by sha256: a file with another hash is refused, saying
 * both, rather than run under the link's name. Throws MODEL_SHA_MISMATCH.
 */
export function verifyLinkedModel(sha256: string, wanted: string, name: string): void {
  if (sha256 !== wanted) {
    throw new QpError(
      'MODEL_SHA_MISMATCH',
      `"${name}" is not the model the link was made with: its sha256 is ${sha256.slice(0, 12)}…, the link needs ${wanted.slice(0, 12)}…. Open the file with that sha256 (or choose a model yourself; the results will then differ from the link's).`,
    );
  }
}

export interface IdentifyOptions {
  /** the file's name, the label of a model the registry does not know */
  name?: string;
  /** the user's preprocessing choice; default: the registry's, else torchvision's */
  preprocess?: PreprocessSpec;
  /** square input size for a graph whose height/width are symbolic */
  inputSize?: number;
  /** the hash when it is already known (a cached model) */
  sha256?: string;
}

export interface ModelIdentity {
  sha256: string;
  /** the registry entry the bytes belong to, if any */
  entry?: ModelEntry;
  spec: ModelSpec;
}

/**
 * Identifies a parsed, validated classifier (`classes` from validateClassifier). Models
 * written by `npm run make-models` carry metadata synthetic=true and are labelled so.
 * Preprocessing of an unknown model is torchvision's; the pipeline adapts its layout and
 * input size to the graph (experiment/inputs.ts resolveModelInput).
 */
export async function identifyModel(
  bytes: Uint8Array,
  graph: Graph,
  classes: number,
  opts: IdentifyOptions = {},
): Promise<ModelIdentity> {
  const sha256 = opts.sha256 ?? (await sha256Hex(bytes));
  const entry = findModelBySha256(sha256);
  const meta = (k: string) => graph.meta.metadataProps.find((p) => p.key === k)?.value;
  const label =
    entry?.label ??
    (meta('synthetic') === 'true' ? `SYNTHETIC ${meta('architecture') ?? 'model'}` : (opts.name ?? 'user model'));
  const base: ModelSpec = entry
    ? toModelSpec(entry)
    : { id: userModelId(sha256), label, preprocess: TORCHVISION_SPEC, classes };
  const spec: ModelSpec = {
    ...base,
    preprocess: opts.preprocess ?? base.preprocess,
    classes,
    ...(opts.inputSize !== undefined ? { inputSize: opts.inputSize } : {}),
  };
  return { sha256, entry, spec };
}
