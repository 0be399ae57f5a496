/**
 * Engine adapter over any onnxruntime JavaScript API (onnxruntime-web's wasm/WebGPU
 * builds, onnxruntime-node). The ORT module is passed in, so this file imports none:
 * the browser passes `onnxruntime-web/webgpu`, Node passes `onnxruntime-web` or
 * `onnxruntime-node`. Session calls are queued: ORT-web does not allow concurrent
 * `run` on one session, and overlapping runs only fight for the same threads.
 */
import { QpError } from '../util/errors.ts';
import type { Engine, EngineKind, EngineSession, FloatTensor, SessionOptions } from './types.ts';

/** The subset of the ORT API we use (shared by onnxruntime-web and onnxruntime-node). */
export interface OrtModule {
  InferenceSession: {
    create(model: Uint8Array, options?: Record<string, unknown>): Promise<OrtSession>;
  };
  Tensor: new (type: 'float32', data: Float32Array, dims: readonly number[]) => OrtTensor;
  env: { versions?: Record<string, string>; wasm?: { numThreads?: number } };
}
interface OrtTensor {
  data: unknown;
  dims: readonly number[];
  type: string;
  dispose?: () => void;
}
interface OrtSession {
  inputNames: readonly string[];
  outputNames: readonly string[];
  run(feeds: Record<string, OrtTensor>, fetches?: readonly string[]): Promise<Record<string, OrtTensor>>;
  release(): Promise<void>;
}

export interface OrtEngineOptions {
  kind: EngineKind;
  /** ORT execution providers, e.g. ['webgpu'] or ['wasm'] */
  executionProviders?: string[];
  /** extra session options (e.g. intraOpNumThreads for onnxruntime-node) */
  sessionOptions?: Record<string, unknown>;
  description: string;
}

/** Serializes async work: ORT sessions must not run concurrently. */
class Queue {
  private tail: Promise<unknown> = Promise.resolve();
  push<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn);
    this.tail = next.catch(() => undefined);
    return next;
  }
}

/**
 * An output's values as float32: float32 as it is; int64 (a Shape output: graphs hand shapes
 * over without a Cast, which WebGPU runs on the CPU) converted when every value is a whole
 * number float32 holds exactly (|v| ≤ 2^24). Throws QpError ENGINE_FAILED otherwise.
 */
function asFloat32(name: string, t: OrtTensor): Float32Array {
  if (t.type === 'float32') return t.data as Float32Array;
  if (t.type === 'int64') {
    const src = t.data as BigInt64Array;
    const out = new Float32Array(src.length);
    for (let i = 0; i < src.length; i++) {
      const v = Number(src[i]);
      if (Math.abs(v) > 2 ** 24)
        throw new QpError('ENGINE_FAILED', `Output "${name}" holds ${v}, too large to pass on as float32 exactly.`);
      out[i] = v;
    }
    return out;
  }
  throw new QpError(
    'ENGINE_FAILED',
    `Output "${name}" has type ${t.type}; only float32 and int64 outputs are supported.`,
  );
}

export function createOrtEngine(ort: OrtModule, opts: OrtEngineOptions): Engine {
  const queue = new Queue();
  return {
    kind: opts.kind,
    description: opts.description,
    async createSession(model: Uint8Array, options: SessionOptions = {}): Promise<EngineSession> {
      if (options.optimizedModelPath && opts.kind !== 'node')
        throw new QpError(
          'ARG_INVALID',
          `The ${opts.kind} engine cannot write the optimized model to a file; use the node engine (onnxruntime-node) for that.`,
        );
      let session: OrtSession;
      try {
        session = await queue.push(() =>
          ort.InferenceSession.create(model, {
            graphOptimizationLevel: options.optimization ?? 'all',
            // 3 = errors only: graph-optimizer notes (e.g. removed initializers) are not faults
            logSeverityLevel: 3,
            ...(options.config ? { extra: options.config } : {}),
            ...(options.optimizedModelPath ? { optimizedModelFilePath: options.optimizedModelPath } : {}),
            ...(opts.executionProviders ? { executionProviders: opts.executionProviders } : {}),
            ...opts.sessionOptions,
          }),
        );
      } catch (e) {
        throw new QpError(
          'ENGINE_FAILED',
          `The ${opts.kind} engine could not load the model graph: ${(e as Error).message}`,
        );
      }
      return {
        inputNames: session.inputNames,
        outputNames: session.outputNames,
        run(feeds, fetches) {
          return queue.push(async () => {
            const ortFeeds: Record<string, OrtTensor> = {};
            for (const [k, t] of Object.entries(feeds)) ortFeeds[k] = new ort.Tensor('float32', t.data, t.dims);
            let out: Record<string, OrtTensor>;
            try {
              out = fetches ? await session.run(ortFeeds, fetches) : await session.run(ortFeeds);
            } catch (e) {
              throw new QpError(
                'ENGINE_FAILED',
                `The ${opts.kind} engine failed while running the model: ${(e as Error).message}`,
              );
            }
            const res: Record<string, FloatTensor> = {};
            for (const [k, t] of Object.entries(out)) res[k] = { data: asFloat32(k, t), dims: [...t.dims] };
            return res;
          });
        },
        release: () => queue.push(() => session.release()),
      };
    },
  };
}
