// preprocessToCrop / resize: hand-computed PIL filter values, Pillow goldens, torchvision
// geometry; cropsToTensor normalization and layouts.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import {
  centerCropOffsets,
  cropsToTensor,
  EFFICIENTNET_LITE_SPEC,
  preprocessToCrop,
  resizeImage,
  resizeShorterSize,
  specKey,
  TORCHVISION_SPEC,
} from '../../src/lib/data/preprocess.ts';
import type { DecodedImage } from '../../src/lib/data/decode.ts';
import type { PreprocessSpec } from '../../src/lib/data/types.ts';

const FIX = fileURLToPath(new URL('../fixtures/data/', import.meta.url));
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Case = any;
const golden = JSON.parse(readFileSync(FIX + 'pil-golden.json', 'utf8')) as {
  resize: Case[];
  torchvision: Case[];
  procedural: Case[];
};
const b64 = (s: string) => new Uint8Array(Buffer.from(s, 'base64'));

/** Gray image from rows of values (R = G = B). */
function grayImage(rows: number[][]): DecodedImage {
  const h = rows.length;
  const w = rows[0].length;
  const data = new Uint8Array(w * h * 3);
  rows.flat().forEach((v, i) => data.fill(v, i * 3, i * 3 + 3));
  return { width: w, height: h, data };
}
const channel0 = (img: DecodedImage) => Array.from(img.data.filter((_, i) => i % 3 === 0));

/** Same procedural image as procedural() in gen_pil_golden.py. */
function proceduralImage(w: number, h: number): DecodedImage {
  const data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const i = (y * w + x) * 3;
      data[i] = Math.floor((x * 255) / Math.max(1, w - 1));
      data[i + 1] = Math.floor((y * 255) / Math.max(1, h - 1));
      data[i + 2] = ((Math.floor(x / 8) + Math.floor(y / 8)) % 2) * 200 + 20;
    }
  return { width: w, height: h, data };
}

function fnv1a(b: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < b.length; i++) h = Math.imul(h ^ b[i], 0x01000193) >>> 0;
  return h;
}

const spec = (s: Partial<PreprocessSpec>): PreprocessSpec => ({ ...TORCHVISION_SPEC, ...s });

describe('PIL-style resize, hand-computed', () => {
  it('4×4 → 2×2 bilinear uses the stretched triangle filter: weights 3/7, 3/7, 1/7 (not a box average)', () => {
    // center of output 0 is input 1.0; support 2; taps 0,1,2 at distances .5,.5,1.5 → 0.75,0.75,0.25
    const row = [0, 70, 140, 210];
    const out = resizeImage(grayImage([row, row, row, row]), 2, 2, 'bilinear');
    // (0·3 + 70·3 + 140·1)/7 = 50, (70·1 + 140·3 + 210·3)/7 = 160
    expect(channel0(out)).toEqual([50, 160, 50, 160]);
  });

  it('2×2 → 4×4 bilinear interpolates at ¼ and ¾ with edge replication and rounds halves up', () => {
    const out = resizeImage(
      grayImage([
        [0, 200],
        [40, 120],
      ]),
      4,
      4,
      'bilinear',
    );
    // horizontal: [0,50,150,200] and [40,60,100,120]; vertical rows 1,2 mix them .75/.25 and .25/.75
    expect(channel0(out)).toEqual([
      0,
      50,
      150,
      200,
      10,
      53,
      138,
      180, // 52.5 → 53, 137.5 → 138
      30,
      58,
      113,
      140, // 57.5 → 58, 112.5 → 113
      40,
      60,
      100,
      120,
    ]);
  });

  it('resizing to the same size is the identity (bilinear and bicubic)', () => {
    const img = proceduralImage(13, 9);
    expect(resizeImage(img, 13, 9, 'bilinear').data).toEqual(img.data);
    expect(resizeImage(img, 13, 9, 'bicubic').data).toEqual(img.data);
  });

  it('bicubic overshoot at a hard edge is clipped to 0..255', () => {
    const out = resizeImage(grayImage([[0, 0, 255, 255]]), 8, 1, 'bicubic');
    const v = channel0(out);
    expect(Math.min(...v)).toBe(0);
    expect(Math.max(...v)).toBe(255);
  });
});

describe('bit-exact against Pillow 9.4 goldens (gen_pil_golden.py)', () => {
  it.each(golden.resize.map((c): [string, Case] => [`${c.w}×${c.h} → ${c.outW}×${c.outH} ${c.interp}`, c]))(
    'resize %s',
    (_n, c) => {
      const img = { width: c.w, height: c.h, data: b64(c.input) };
      const out = resizeImage(img, c.outW, c.outH, c.interp);
      expect(Buffer.from(out.data).toString('base64')).toBe(c.expected);
    },
  );

  it.each(golden.torchvision.map((c): [string, Case] => [c.interp, c]))(
    'Resize(32) + CenterCrop(28) %s on random 61×45',
    (_n, c) => {
      expect(resizeShorterSize(c.w, c.h, c.short)).toEqual(c.resized);
      const { left, top } = centerCropOffsets(c.resized[0], c.resized[1], c.crop);
      expect([left, top]).toEqual(c.offsets);
      const crop = preprocessToCrop(
        { width: c.w, height: c.h, data: b64(c.input) },
        spec({ resizeShorter: c.short, crop: c.crop, interpolation: c.interp }),
      );
      expect(Buffer.from(crop).toString('base64')).toBe(c.expected);
    },
  );

  it.each(golden.procedural.map((c): [string, Case] => [`${c.w}×${c.h} ${c.interp}`, c]))(
    'Resize(256) + CenterCrop(224) %s',
    (_n, c) => {
      expect(resizeShorterSize(c.w, c.h, 256)).toEqual(c.resized);
      const crop = preprocessToCrop(proceduralImage(c.w, c.h), spec({ interpolation: c.interp }));
      const p = (100 * 224 + 37) * 3;
      expect(Array.from(crop.subarray(p, p + 3))).toEqual(c.pixel_100_37);
      expect(fnv1a(crop)).toBe(c.fnv1a);
    },
  );
});

describe('torchvision geometry', () => {
  it('Resize(256): shorter side 256, long side int(256·long/short)', () => {
    expect(resizeShorterSize(500, 375, 256)).toEqual([341, 256]);
    expect(resizeShorterSize(333, 500, 256)).toEqual([256, 384]);
    expect(resizeShorterSize(300, 300, 256)).toEqual([256, 256]);
  });

  it('CenterCrop offsets use Python round (half to even) and zero-pad when the crop is larger', () => {
    expect(centerCropOffsets(256, 256, 224)).toEqual({ left: 16, top: 16 });
    expect(centerCropOffsets(257, 259, 224)).toEqual({ left: 16, top: 18 }); // 16.5 → 16, 17.5 → 18
    expect(centerCropOffsets(225, 227, 224)).toEqual({ left: 0, top: 2 }); // 0.5 → 0, 1.5 → 2
    expect(centerCropOffsets(200, 201, 224)).toEqual({ left: -12, top: -11 });
  });

  it('the cropped window equals a full resize followed by the crop (odd sizes)', () => {
    for (const [w, h, interp] of [
      [97, 61, 'bilinear'],
      [61, 97, 'bicubic'],
      [40, 40, 'bicubic'],
    ] as const) {
      const img = proceduralImage(w, h);
      const s = spec({ resizeShorter: 36, crop: 31, interpolation: interp });
      const [rw, rh] = resizeShorterSize(w, h, 36);
      const full = resizeImage(img, rw, rh, interp);
      const { left, top } = centerCropOffsets(rw, rh, 31);
      const expected = new Uint8Array(31 * 31 * 3);
      for (let y = 0; y < 31; y++)
        expected.set(full.data.subarray(((top + y) * rw + left) * 3, ((top + y) * rw + left + 31) * 3), y * 31 * 3);
      expect(preprocessToCrop(img, s)).toEqual(expected);
    }
  });

  it('a crop larger than the resized image is zero-padded around the centre', () => {
    const img = grayImage([
      [9, 9],
      [9, 9],
    ]);
    const crop = preprocessToCrop(img, spec({ resizeShorter: 2, crop: 4 }));
    expect(channel0({ width: 4, height: 4, data: crop })).toEqual([0, 0, 0, 0, 0, 9, 9, 0, 0, 9, 9, 0, 0, 0, 0, 0]);
  });
});

describe('cropsToTensor', () => {
  const s2 = (s: Partial<PreprocessSpec>) => spec({ crop: 2, ...s });
  const crop = (px: [number, number, number]) => {
    const c = new Uint8Array(12);
    for (let p = 0; p < 4; p++) c.set(px, p * 3);
    return c;
  };

  it('normalizes a known pixel with ImageNet mean/std (NCHW)', () => {
    const c = crop([10, 20, 30]);
    c.set([255, 0, 128], 3 * 3); // pixel (1,1)
    const t = cropsToTensor([c], s2({}));
    expect(t.length).toBe(12);
    expect(t[3]).toBeCloseTo((1 - 0.485) / 0.229, 5); // R plane, pixel 3
    expect(t[4 + 3]).toBeCloseTo((0 - 0.456) / 0.224, 5); // G plane
    expect(t[8 + 3]).toBeCloseTo((128 / 255 - 0.406) / 0.225, 5); // B plane
    expect(t[0]).toBeCloseTo((10 / 255 - 0.485) / 0.229, 5);
    // float32 steps as torchvision: fround(fround(fround(x/255) − fround(m)) / fround(s))
    const f = Math.fround;
    expect(t[8 + 3]).toBe(f(f(f(128 / 255) - f(0.406)) / f(0.225)));
  });

  it('NHWC keeps channels interleaved; a batch places crops one after another', () => {
    const a = crop([255, 0, 128]);
    const b = crop([0, 255, 64]);
    const t = cropsToTensor([a, b], s2({ layout: 'NHWC' }));
    expect(t.length).toBe(24);
    expect(t[0]).toBeCloseTo((1 - 0.485) / 0.229, 5);
    expect(t[1]).toBeCloseTo(-0.456 / 0.224, 5);
    expect(t[12 + 1]).toBeCloseTo((1 - 0.456) / 0.224, 5);
    const nchw = cropsToTensor([a, b], s2({}));
    expect(nchw[12 + 4]).toBeCloseTo((1 - 0.456) / 0.224, 5); // crop 1, G plane, pixel 0
  });

  it('EfficientNet-Lite spec is (x − 127) / 128', () => {
    const t = cropsToTensor([crop([127, 255, 0])], { ...EFFICIENTNET_LITE_SPEC, crop: 2 });
    expect(t[0]).toBeCloseTo(0, 6);
    expect(t[4]).toBeCloseTo(1, 6);
    expect(t[8]).toBeCloseTo(-127 / 128, 6);
  });

  it('reuses a longer output buffer and returns an exact-length view; rejects wrong crop sizes', () => {
    const buf = new Float32Array(100);
    const t = cropsToTensor([crop([1, 2, 3])], s2({}), buf);
    expect(t.length).toBe(12);
    expect(t.buffer).toBe(buf.buffer);
    expect(() => cropsToTensor([new Uint8Array(11)], s2({}))).toThrow(/expected 12/);
    expect(() => cropsToTensor([crop([1, 2, 3]), crop([1, 2, 3])], s2({}), new Float32Array(12))).toThrow(/need 24/);
  });
});

describe('specs', () => {
  it('specKey depends on the crop geometry only', () => {
    expect(specKey(TORCHVISION_SPEC)).toBe('bilinear-r256-c224-v1');
    expect(specKey(EFFICIENTNET_LITE_SPEC)).toBe('bicubic-r256-c224-v1');
    expect(specKey({ ...TORCHVISION_SPEC, mean: [0.5, 0.5, 0.5], layout: 'NHWC' })).toBe(specKey(TORCHVISION_SPEC));
    expect(specKey({ ...TORCHVISION_SPEC, resizeShorter: 232 })).not.toBe(specKey(TORCHVISION_SPEC));
  });

  it('invalid specs are CONFIG_INVALID', () => {
    const img = proceduralImage(8, 8);
    expect(() => preprocessToCrop(img, spec({ crop: 0 }))).toThrow(/whole numbers/);
    expect(() => preprocessToCrop(img, spec({ std: [0, 1, 1] }))).toThrow(/std/);
  });
});
