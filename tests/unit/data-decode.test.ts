// decodeImage: JPEG (real, grayscale, progressive, CMYK; pixel-exact with Pillow), PNG under a .JPEG name, and the error paths.
import { beforeAll, describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import jpeg from 'jpeg-js';
import { encode as encodePng } from 'fast-png';
import { decodeImage, initJpegDecoder, jpegDimensions } from '../../src/lib/data/decode.ts';
import { decodeImageJpegJs, upsampleFancy } from '../../src/lib/data/decode-jpegjs.ts';
import { QpError } from '../../src/lib/util/errors.ts';

const FIX = fileURLToPath(new URL('../fixtures/data/', import.meta.url));
beforeAll(() => initJpegDecoder());

function gradient(w: number, h: number): Uint8Array {
  const rgba = new Uint8Array(w * h * 4);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 4;
      rgba[i] = (x * 255) / (w - 1);
      rgba[i + 1] = (y * 255) / (h - 1);
      rgba[i + 2] = 128;
      rgba[i + 3] = 255;
    }
  return rgba;
}

function encodeJpeg(w: number, h: number, quality = 95): Uint8Array {
  return new Uint8Array(jpeg.encode({ width: w, height: h, data: gradient(w, h) }, quality).data);
}

function errorOf(fn: () => unknown): QpError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(QpError);
    return e as QpError;
  }
  throw new Error('expected a QpError');
}

function meanAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += Math.abs(a[i] - b[i]);
  return s / a.length;
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  expect(a.length).toBe(b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

describe('decode fixtures made with Pillow (tests/fixtures/data/gen_pil_golden.py)', () => {
  const ref = JSON.parse(readFileSync(FIX + 'decode-pil-rgb.json', 'utf8')) as Record<string, string>;
  const pil = (name: string) => new Uint8Array(Buffer.from(ref[name], 'base64'));

  it('grayscale JPEG → RGB with equal channels, pixel-exact with PIL', () => {
    const img = decodeImage(new Uint8Array(readFileSync(FIX + 'gray-24x16.jpg')), 'gray');
    expect([img.width, img.height]).toEqual([24, 16]);
    for (let i = 0; i < img.data.length; i += 3) expect(img.data[i + 2]).toBe(img.data[i]);
    expect(maxAbsDiff(img.data, pil('gray-24x16.jpg'))).toBe(0);
  });

  it('CMYK (Adobe) JPEG → RGB close to PIL convert("RGB") (jpeg-js path: libjpeg-turbo has no CMYK→RGB)', () => {
    const img = decodeImage(new Uint8Array(readFileSync(FIX + 'cmyk-24x16.jpg')), 'cmyk');
    expect(meanAbsDiff(img.data, pil('cmyk-24x16.jpg'))).toBeLessThan(0.5);
  });

  it.each(['ycc420-23x15.jpg', 'ycc422-23x15.jpg', 'ycc444-23x15.jpg'])(
    '%s: pixel-exact with PIL (libjpeg-turbo in wasm)',
    (name) => {
      const img = decodeImage(new Uint8Array(readFileSync(FIX + name)), name);
      expect([img.width, img.height]).toEqual([23, 15]);
      expect(maxAbsDiff(img.data, pil(name))).toBe(0);
    },
  );

  it('the jpeg-js baseline is NOT exact on 4:2:0 (what the wasm decoder fixes)', () => {
    const img = decodeImageJpegJs(new Uint8Array(readFileSync(FIX + 'ycc420-23x15.jpg')), '420');
    expect(maxAbsDiff(img.data, pil('ycc420-23x15.jpg'))).toBeGreaterThan(0);
  });

  it('palette PNG → RGB exactly as PIL', () => {
    const img = decodeImage(new Uint8Array(readFileSync(FIX + 'palette-24x16.png')), 'pal.JPEG');
    expect(Array.from(img.data)).toEqual(Array.from(pil('palette-24x16.png')));
  });
});

describe('crops of real photos in every JPEG flavour (tests/fixtures/data/gen_real_crops.py)', () => {
  const ref = JSON.parse(readFileSync(FIX + 'decode-pil-real.json', 'utf8')) as Record<string, string>;
  const pil = (name: string) => new Uint8Array(Buffer.from(ref[name], 'base64'));

  it.each([
    'real420-48x32.jpg',
    'real422-48x32.jpg',
    'real444-48x32.jpg',
    'realprog-48x32.jpg',
    'realprog444-48x32.jpg',
    'realgray-48x32.jpg',
  ])('%s: pixel-exact with PIL', (name) => {
    const img = decodeImage(new Uint8Array(readFileSync(FIX + name)), name);
    expect([img.width, img.height]).toEqual([48, 32]);
    expect(maxAbsDiff(img.data, pil(name))).toBe(0);
  });

  it('realcmyk-48x32.jpg: CMYK (Adobe, inverted) close to PIL (±2 levels, jpeg-js IDCT)', () => {
    const img = decodeImage(new Uint8Array(readFileSync(FIX + 'realcmyk-48x32.jpg')), 'cmyk');
    expect([img.width, img.height]).toEqual([48, 32]);
    expect(meanAbsDiff(img.data, pil('realcmyk-48x32.jpg'))).toBeLessThan(0.5);
    expect(maxAbsDiff(img.data, pil('realcmyk-48x32.jpg'))).toBeLessThanOrEqual(2);
  });
});

describe('decodeImage on synthetic input', () => {
  it('round-trips a jpeg-js-encoded gradient closely', () => {
    const bytes = encodeJpeg(40, 30, 100);
    const img = decodeImage(bytes, 'grad');
    expect([img.width, img.height]).toEqual([40, 30]);
    expect(jpegDimensions(bytes)).toEqual([40, 30]);
    const rgba = gradient(40, 30);
    const rgb = new Uint8Array(40 * 30 * 3);
    for (let p = 0; p < 40 * 30; p++) rgb.set(rgba.subarray(p * 4, p * 4 + 3), p * 3);
    expect(meanAbsDiff(img.data, rgb)).toBeLessThan(2);
  });

  it('zero bytes → IMAGE_UNREADABLE naming the image', () => {
    const e = errorOf(() => decodeImage(new Uint8Array(0), 'n01440764_empty.JPEG'));
    expect(e.code).toBe('IMAGE_UNREADABLE');
    expect(e.message).toContain('n01440764_empty.JPEG');
    expect(e.message).toMatch(/empty/);
  });

  it('truncated JPEG → IMAGE_UNREADABLE', () => {
    const bytes = encodeJpeg(64, 48);
    const e = errorOf(() => decodeImage(bytes.subarray(0, Math.floor(bytes.length / 2)), 'cut.JPEG'));
    expect(e.code).toBe('IMAGE_UNREADABLE');
    expect(e.message).toContain('cut.JPEG');
    expect(e.message).toMatch(/truncated or corrupt/);
  });

  it('PNG bytes named .JPEG are decoded (RGBA → RGB drops alpha, like PIL convert("RGB"))', () => {
    const rgba = gradient(10, 6);
    rgba[3] = 0; // transparent pixel keeps its colour
    const png = encodePng({ width: 10, height: 6, data: rgba, channels: 4, depth: 8 });
    const img = decodeImage(png, 'n01440764.JPEG');
    expect([img.width, img.height]).toEqual([10, 6]);
    for (let p = 0; p < 60; p++) {
      expect(img.data[p * 3]).toBe(rgba[p * 4]);
      expect(img.data[p * 3 + 1]).toBe(rgba[p * 4 + 1]);
      expect(img.data[p * 3 + 2]).toBe(rgba[p * 4 + 2]);
    }
  });

  it('16-bit grayscale PNG keeps the high byte, replicated to RGB', () => {
    const g = new Uint16Array([0, 0x1234, 0xff00, 0xffff]);
    const img = decodeImage(encodePng({ width: 2, height: 2, data: g, channels: 1, depth: 16 }), 'g16');
    expect(Array.from(img.data)).toEqual([0, 0, 0, 0x12, 0x12, 0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
  });

  it('a corrupt PNG → IMAGE_UNREADABLE saying it is a PNG file', () => {
    const png = encodePng({ width: 10, height: 6, data: gradient(10, 6), channels: 4, depth: 8 });
    const e = errorOf(() => decodeImage(png.subarray(0, 40), 'x.JPEG'));
    expect(e.code).toBe('IMAGE_UNREADABLE');
    expect(e.message).toMatch(/is a PNG file/);
  });

  it('GIF and unknown bytes → IMAGE_UNREADABLE with the format named', () => {
    const gif = new TextEncoder().encode('GIF89a\x01\x00\x01\x00');
    expect(errorOf(() => decodeImage(gif, 'a.JPEG')).message).toMatch(/is a GIF file/);
    const txt = new TextEncoder().encode('hello world');
    const e = errorOf(() => decodeImage(txt, 'b.JPEG'));
    expect(e.code).toBe('IMAGE_UNREADABLE');
    expect(e.message).toMatch(/not a JPEG or PNG/);
  });

  it('images over the size limit → IMAGE_TOO_LARGE (JPEG and PNG)', () => {
    const limits = { maxMegapixels: 0.001, maxMemoryMB: 64 }; // 1000 px
    const j = errorOf(() => decodeImage(encodeJpeg(64, 48), 'big.JPEG', limits));
    expect(j.code).toBe('IMAGE_TOO_LARGE');
    expect(j.message).toContain('64×48');
    const png = encodePng({ width: 64, height: 48, data: new Uint8Array(64 * 48 * 3), channels: 3, depth: 8 });
    expect(errorOf(() => decodeImage(png, 'big.png', limits)).code).toBe('IMAGE_TOO_LARGE');
  });
});

describe('fancy chroma upsampling of the jpeg-js path (CMYK fallback)', () => {
  // expected values worked by hand from libjpeg-turbo jdsample.c: h2v2 column sums 3·near + far,
  // then (3·this + left + 8) >> 4 and (3·this + right + 7) >> 4 (edges: 4·this + 8 / + 7);
  // h2v1 (3·this + left + 1) >> 2 and (3·this + right + 2) >> 2; h1v2 (3·near + far + 1 | 2) >> 2
  const src = Uint8Array.of(10, 20, 50, 90); // 2×2 chroma plane
  const up = (hf: number, vf: number, cw: number, ch: number, W: number, H: number) => {
    const dst = new Uint8Array(W * H);
    upsampleFancy(src.subarray(0, cw * ch), cw, ch, hf, vf, dst, W, H);
    return Array.from(dst);
  };
  it('h2v2 (4:2:0)', () => {
    expect(up(2, 2, 2, 2, 4, 4)).toEqual([10, 12, 18, 20, 20, 24, 33, 37, 40, 48, 64, 72, 50, 60, 80, 90]);
  });
  it('h2v1 (4:2:2)', () => {
    expect(up(2, 1, 2, 1, 4, 1)).toEqual([10, 13, 17, 20]);
  });
  it('h1v2 (4:4:0)', () => {
    expect(up(1, 2, 2, 2, 2, 4)).toEqual([10, 20, 20, 38, 40, 72, 50, 90]);
  });
});
