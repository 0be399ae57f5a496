/**
 * Image decoding (JPEG, and PNG files that carry a .JPEG name) to 8-bit RGB, pixel-exact
 * with Pillow (the reference for the published accuracies).
 *
 * Why: Pillow decodes JPEG with libjpeg-turbo (islow IDCT, "fancy" chroma upsampling); the
 * same library compiled to wasm (@jsquash/jpeg's MozJPEG build) gives the same pixels in
 * Node and in every browser, and much faster than jpeg-js (bench:perf decodeSpeedup;
 * docs/performance.md). CMYK/YCCK JPEGs (which
 * libjpeg-turbo will not convert to RGB) and PNG go through the pure-JavaScript path in
 * decode-jpegjs.ts.
 * The wasm is instantiated once per thread by `initJpegDecoder()` (async); `decodeImage` is
 * synchronous after that. Node reads the .wasm from node_modules; the browser needs its URL
 * from the bundler (`setJpegWasmUrl`, see data/jpeg-wasm.browser.ts).
 * Must not: import node: modules statically, touch the DOM, or throw anything but QpError
 * (IMAGE_UNREADABLE / IMAGE_TOO_LARGE / INTERNAL) for bad input.
 */
import mozjpegFactory from '@jsquash/jpeg/codec/dec/mozjpeg_dec.js';
import type { MozJPEGModule } from '@jsquash/jpeg/codec/dec/mozjpeg_dec.js';
import {
  DEFAULT_DECODE_LIMITS,
  decodeImageJpegJs,
  decodePngToRgb,
  imageKind,
  jpegInfo,
  label,
  tooLarge,
  type DecodeLimits,
  type DecodedImage,
} from './decode-jpegjs.ts';
import { QpError } from '../util/errors.ts';

export {
  DEFAULT_DECODE_LIMITS,
  jpegDimensions,
  jpegInfo,
  type DecodeLimits,
  type DecodedImage,
} from './decode-jpegjs.ts';

/**
 * Names the decoder, for cache keys: crops made by another decoder (jpeg-js, ±1..69 levels
 * off Pillow) must never be reused.
 */
export const DECODER_ID = 'ljt-wasm1';

let wasmUrl: string | undefined;
let modulePromise: Promise<MozJPEGModule> | undefined;
let ready: MozJPEGModule | undefined;

/** Browser: where the bundler put mozjpeg_dec.wasm (call before initJpegDecoder). */
export function setJpegWasmUrl(url: string): void {
  wasmUrl = url;
}

async function loadWasmBytes(): Promise<ArrayBuffer> {
  const proc = (globalThis as { process?: { versions?: { node?: string } } }).process;
  if (!wasmUrl && proc?.versions?.node) {
    // Node: the file next to the package's JS (the emscripten loader would try fetch(file:)).
    // Dynamic and hidden from bundlers so this module stays browser-safe.
    const fsName = 'node:fs/promises';
    const modName = 'node:module';
    const { readFile } = (await import(/* @vite-ignore */ fsName)) as typeof import('node:fs/promises');
    const { createRequire } = (await import(/* @vite-ignore */ modName)) as typeof import('node:module');
    const require = createRequire(import.meta.url);
    const js = require.resolve('@jsquash/jpeg/codec/dec/mozjpeg_dec.wasm');
    const buf = await readFile(js);
    return buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength) as ArrayBuffer;
  }
  const url = wasmUrl;
  if (!url) throw new Error('no URL for mozjpeg_dec.wasm was set (setJpegWasmUrl)');
  const res = await fetch(url);
  if (!res.ok) throw new Error(`HTTP ${res.status} for ${url}`);
  return res.arrayBuffer();
}

/** Instantiate the wasm JPEG decoder once (idempotent; concurrent callers share one load). */
export function initJpegDecoder(): Promise<void> {
  modulePromise ??= (async () => {
    let compiled: WebAssembly.Module;
    try {
      compiled = await WebAssembly.compile(await loadWasmBytes());
    } catch (e) {
      modulePromise = undefined; // allow a retry
      throw new QpError(
        'INTERNAL',
        `The JPEG decoder (mozjpeg_dec.wasm from @jsquash/jpeg) could not be loaded (${e instanceof Error ? e.message : String(e)}). ` +
          'Check that node_modules is complete (or that the build emitted the .wasm) and reload.',
      );
    }
    const m = await mozjpegFactory({
      noInitialRun: true,
      // libjpeg's warnings (e.g. "premature end of data segment") go to stderr otherwise;
      // the bad cases they describe are reported as QpErrors instead
      print: () => {},
      printErr: () => {},
      instantiateWasm: (imports: WebAssembly.Imports, done: (i: WebAssembly.Instance) => void) => {
        const inst = new WebAssembly.Instance(compiled, imports);
        done(inst);
        return inst.exports;
      },
    } as Parameters<typeof mozjpegFactory>[0]);
    ready = m;
    return m;
  })();
  return modulePromise.then(() => undefined);
}

/** Offset just past the first SOS marker's header start, or -1. */
function firstScan(b: Uint8Array): number {
  let i = 2;
  while (i + 3 < b.length) {
    if (b[i] !== 0xff) return -1;
    const m = b[i + 1];
    if (m === 0xff) {
      i++;
      continue;
    }
    if (m === 0xda) return i;
    if (m === 0x01 || (m >= 0xd0 && m <= 0xd7)) {
      i += 2;
      continue;
    }
    i += 2 + ((b[i + 2] << 8) | b[i + 3]);
  }
  return -1;
}

/**
 * A JPEG whose data stops early: no EOI after the first scan. (Entropy-coded data cannot
 * contain FF D9, and an EXIF thumbnail's EOI lies before the first scan.) libjpeg-turbo
 * would pad such a file with gray and warn; Pillow refuses it ("image file is truncated").
 */
function isTruncated(b: Uint8Array): boolean {
  const sos = firstScan(b);
  if (sos < 0) return true;
  for (let i = b.length - 2; i > sos; i--) if (b[i] === 0xff && b[i + 1] === 0xd9) return false;
  return true;
}

/**
 * Decode JPEG (baseline or progressive; grayscale, YCbCr, RGB, CMYK/YCCK) or PNG bytes to RGB.
 * Grayscale is replicated to three channels, alpha is dropped (as PIL's convert('RGB')),
 * 16-bit PNG samples keep their high byte. JPEGs need `await initJpegDecoder()` first.
 */
export function decodeImage(
  bytes: Uint8Array,
  id?: string,
  limits: DecodeLimits = DEFAULT_DECODE_LIMITS,
): DecodedImage {
  if (imageKind(bytes, id) === 'png') return decodePngToRgb(bytes, id, limits);
  const info = jpegInfo(bytes);
  // CMYK/YCCK (4 components): libjpeg-turbo has no RGB conversion for them.
  if (info && info.components.length === 4) return decodeImageJpegJs(bytes, id, limits);
  const corrupt = (why: string) =>
    new QpError(
      'IMAGE_UNREADABLE',
      `${label(id)} could not be decoded as JPEG (${why}); the file is probably truncated or corrupt. Re-download it or remove it from the data set.`,
    );
  if (!info) throw corrupt('no frame header');
  if (info.width * info.height > limits.maxMegapixels * 1e6) throw tooLarge(id, info.width, info.height, limits);
  // RGBA output, the RGB copy, and (progressive) all coefficients kept: ≤ 13 bytes per pixel.
  if ((info.width * info.height * 13) / 2 ** 20 > limits.maxMemoryMB) {
    throw new QpError(
      'IMAGE_TOO_LARGE',
      `${label(id)} is too large to decode within ${limits.maxMemoryMB} MB (${info.width}×${info.height}). Downscale it or remove it from the data set.`,
    );
  }
  if (isTruncated(bytes)) throw corrupt('the data ends before the end-of-image marker');
  if (!ready) {
    throw new QpError(
      'INTERNAL',
      'The JPEG decoder is not initialised: call and await initJpegDecoder() before decodeImage().',
    );
  }
  let rgba: ImageData | null;
  try {
    rgba = ready.decode(bytes as Uint8Array<ArrayBuffer>, false);
  } catch (e) {
    // libjpeg's error_exit aborts the wasm call with a non-Error value
    throw corrupt(e instanceof Error ? e.message : 'libjpeg-turbo rejected it');
  }
  if (!rgba || !rgba.width || !rgba.height || rgba.data.length !== rgba.width * rgba.height * 4) {
    throw new QpError(
      'IMAGE_UNREADABLE',
      `${label(id)} decoded to an empty or inconsistent picture. Re-download it or remove it from the data set.`,
    );
  }
  const n = rgba.width * rgba.height;
  const src = rgba.data;
  const out = new Uint8Array(n * 3);
  for (let p = 0, s = 0, d = 0; p < n; p++, s += 4, d += 3) {
    out[d] = src[s];
    out[d + 1] = src[s + 1];
    out[d + 2] = src[s + 2];
  }
  return { width: rgba.width, height: rgba.height, data: out };
}
