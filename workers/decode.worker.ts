/**
 * One decode worker of the browser's pool (src/lib/data/decode-pool.ts): JPEG/PNG bytes in,
 * preprocessed uint8 crop out, with the same code Node runs.
 */
import { decodeImage } from '../src/lib/data/decode.ts';
import { initBrowserJpegDecoder } from '../src/lib/data/jpeg-wasm.browser.ts';
import { preprocessToCrop } from '../src/lib/data/preprocess.ts';
import { QpError } from '../src/lib/util/errors.ts';
import type { DecodeReply, DecodeRequest } from '../src/lib/data/decode-pool.ts';

const ready = initBrowserJpegDecoder();

self.onmessage = async (ev: MessageEvent<DecodeRequest>) => {
  const { id, bytes, name, spec } = ev.data;
  let reply: DecodeReply;
  try {
    await ready;
    reply = { id, crop: preprocessToCrop(decodeImage(bytes, name), spec) };
  } catch (e) {
    const q =
      e instanceof QpError
        ? e
        : new QpError(
            'IMAGE_UNREADABLE',
            `Image "${name}" could not be decoded (${e instanceof Error ? e.message : String(e)}). Check the file or remove it from the data set.`,
          );
    reply = { id, error: { code: q.code, message: q.message } };
  }
  if ('crop' in reply) (self as unknown as Worker).postMessage(reply, [reply.crop.buffer]);
  else (self as unknown as Worker).postMessage(reply);
};
