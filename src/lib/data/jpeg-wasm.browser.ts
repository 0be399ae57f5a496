/**
 * Browser only: tells the JPEG decoder where Vite put mozjpeg_dec.wasm, then loads it.
 *
 * Why: the `?url` import is a bundler feature (Node and tsx cannot resolve it), so it lives
 * here, imported by worker code only; decode.ts stays platform-neutral.
 */
import wasmUrl from '@jsquash/jpeg/codec/dec/mozjpeg_dec.wasm?url';
import { initJpegDecoder, setJpegWasmUrl } from './decode.ts';

export function initBrowserJpegDecoder(): Promise<void> {
  setJpegWasmUrl(wasmUrl);
  return initJpegDecoder();
}
