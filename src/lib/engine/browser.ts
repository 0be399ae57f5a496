/**
 * The browser engine (runs inside the worker), on one of two onnxruntime-web builds picked
 * at runtime: where a WebGPU adapter exists, the WebGPU build (`onnxruntime-web/webgpu`, its
 * 26.8 MB .wasm also carries the wasm execution provider); elsewhere the plain wasm build
 * (`onnxruntime-web/wasm`, 14.2 MB), so a browser without WebGPU never downloads the larger
 * file. The default `onnxruntime-web` import is NOT used: its WebGPU path computes our
 * fake-quant graphs wrongly (measured).
 *
 * Configures `env.wasm` once, before the first session: thread count (needs
 * cross-origin isolation, else 1) and the URL of the build's .wasm binary as Vite serves it.
 * ORT is imported dynamically so each build becomes its own chunk: ORT starts its pthread
 * workers from its own module URL, and that chunk must contain ORT only.
 *
 * WebGPU failures never end a run: no adapter, a session that cannot be created, or a
 * `run` that throws (op error, device lost) switch this engine to wasm for the rest of
 * the run, and `fallbackReason` / `description` say so.
 * Must not: know about quantization, datasets or the DOM.
 */
import webgpuWasmUrl from 'onnxruntime-web/ort-wasm-simd-threaded.asyncify.wasm?url';
import plainWasmUrl from 'onnxruntime-web/ort-wasm-simd-threaded.wasm?url';
import { QpError } from '../util/errors.ts';
import { FallbackEngine } from './fallback.ts';
import { createOrtEngine, type OrtModule } from './ort.ts';
import type { Engine, EngineKind } from './types.ts';

export type EnginePref = 'auto' | 'webgpu' | 'wasm';

export interface BrowserEngine {
  engine: Engine;
  /** set when WebGPU was asked for (or auto) but the run uses wasm; a full sentence */
  fallbackReason?: string;
}

export interface GpuInfo {
  available: boolean;
  /** adapter description, e.g. "SwiftShader" or a GPU name */
  adapter?: string;
  /** why not available, a full sentence */
  reason?: string;
}

type OrtWeb = OrtModule & {
  env: OrtModule['env'] & {
    wasm: { numThreads?: number; wasmPaths?: string | { wasm?: string; mjs?: string }; proxy?: boolean };
    logLevel?: string;
  };
};

/** Which onnxruntime-web build this worker loaded. */
export type OrtBuild = 'webgpu' | 'wasm';

const MAX_THREADS = 4;
let ortPromise: Promise<OrtWeb> | undefined;
let threads = 1;

/** Threads ORT may use: hardware threads (capped), 1 without cross-origin isolation. */
export function wasmThreadCount(): number {
  const isolated = (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true;
  const hc = typeof navigator !== 'undefined' && navigator.hardwareConcurrency ? navigator.hardwareConcurrency : 1;
  return isolated ? Math.max(1, Math.min(MAX_THREADS, hc)) : 1;
}

/**
 * Import ORT once (the build asked for by the first call; later calls get the same one) and
 * set env.wasm before any session exists.
 */
function loadOrt(build: OrtBuild): Promise<OrtWeb> {
  ortPromise ??= (build === 'webgpu' ? import('onnxruntime-web/webgpu') : import('onnxruntime-web/wasm')).then((m) => {
    const ort = ((m as { default?: unknown }).default ?? m) as OrtWeb;
    threads = wasmThreadCount();
    ort.env.wasm.numThreads = threads;
    // The bundle inlines the JS glue; only the .wasm binary is fetched, from Vite's URL.
    const url = build === 'webgpu' ? webgpuWasmUrl : plainWasmUrl;
    ort.env.wasm.wasmPaths = { wasm: new URL(url, globalThis.location?.href).href };
    ort.env.logLevel = 'error';
    return ort;
  });
  return ortPromise;
}

/**
 * The build for this browser: WebGPU's where an adapter exists (also when the run asks for
 * wasm, so a later WebGPU run needs no second ORT in the worker), else the plain wasm one.
 */
export function ortBuildFor(gpu: GpuInfo): OrtBuild {
  return gpu.available ? 'webgpu' : 'wasm';
}

let gpuInfo: Promise<GpuInfo> | undefined;

/** Whether a WebGPU adapter can be obtained here (cached). Never throws. */
export function detectWebGpu(): Promise<GpuInfo> {
  gpuInfo ??= (async (): Promise<GpuInfo> => {
    const gpu = (globalThis.navigator as Navigator & { gpu?: { requestAdapter(): Promise<unknown> } }).gpu;
    if (!gpu) return { available: false, reason: 'This browser does not offer WebGPU (navigator.gpu is missing).' };
    try {
      const adapter = (await gpu.requestAdapter()) as {
        info?: { description?: string; vendor?: string; architecture?: string };
      } | null;
      if (!adapter)
        return {
          available: false,
          reason: 'WebGPU is present but no GPU adapter was found (blocklisted driver or disabled).',
        };
      const i = adapter.info ?? {};
      const name = [i.vendor, i.architecture, i.description].filter(Boolean).join(' ') || 'unknown adapter';
      return { available: true, adapter: name };
    } catch (e) {
      return { available: false, reason: `Requesting a WebGPU adapter failed: ${(e as Error).message}` };
    }
  })();
  return gpuInfo;
}

function ortVersion(ort: OrtWeb): string {
  return ort.env.versions?.web ?? ort.env.versions?.common ?? '';
}

function plainEngine(ort: OrtWeb, kind: Exclude<EngineKind, 'node'>, extra = ''): Engine {
  const desc =
    kind === 'wasm'
      ? `onnxruntime-web ${ortVersion(ort)} wasm, ${threads} thread${threads === 1 ? '' : 's'}`
      : `onnxruntime-web ${ortVersion(ort)} WebGPU${extra ? ` (${extra})` : ''}`;
  return createOrtEngine(ort, { kind, executionProviders: [kind], description: desc });
}

/**
 * The engine for a run. 'wasm' always gives wasm; 'webgpu' and 'auto' give WebGPU when
 * an adapter exists, else wasm with `fallbackReason` set. A later WebGPU failure during
 * the run also switches to wasm; read `fallbackReason()` from the returned getter.
 * Throws QpError('ENGINE_FAILED') only when ORT itself cannot be loaded.
 */
export async function createBrowserEngine(
  pref: EnginePref,
): Promise<BrowserEngine & { laterFallback: () => string | undefined }> {
  const gpu = await detectWebGpu();
  let ort: OrtWeb;
  try {
    ort = await loadOrt(ortBuildFor(gpu));
  } catch (e) {
    throw new QpError('ENGINE_FAILED', `onnxruntime-web could not be loaded: ${(e as Error).message}`);
  }
  const wasm = plainEngine(ort, 'wasm');
  if (pref === 'wasm') return { engine: wasm, laterFallback: () => undefined };
  if (!gpu.available) {
    return { engine: wasm, fallbackReason: `${gpu.reason} The run uses wasm instead.`, laterFallback: () => undefined };
  }
  let later: string | undefined;
  const engine = new FallbackEngine(plainEngine(ort, 'webgpu', gpu.adapter), wasm, (r) => {
    later = r;
  });
  return { engine, laterFallback: () => later };
}

/** Facts for the UI's engine panel. Never throws. */
export async function engineEnvironment(): Promise<{ gpu: GpuInfo; threads: number; crossOriginIsolated: boolean }> {
  return {
    gpu: await detectWebGpu(),
    threads: wasmThreadCount(),
    crossOriginIsolated: (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated === true,
  };
}

/**
 * Test hook (reached only through workers/test-hooks.ts): destroys onnxruntime's WebGPU
 * device, as a driver reset or a GPU process crash would ("device lost"), so the wasm
 * fallback can be driven end to end. Returns 'lost', or why there was no device to lose.
 */
export async function loseWebGpuDevice(): Promise<string> {
  if (!ortPromise) return 'onnxruntime is not loaded yet';
  const ort = await ortPromise;
  const webgpu = (ort.env as { webgpu?: { device?: Promise<{ destroy(): void }> } }).webgpu;
  if (!webgpu) return 'onnxruntime has no WebGPU settings';
  let device: { destroy(): void } | undefined;
  try {
    device = await webgpu.device;
  } catch (e) {
    return `no WebGPU device: ${(e as Error).message}`;
  }
  if (!device) return 'no WebGPU device yet';
  device.destroy();
  return 'lost';
}
