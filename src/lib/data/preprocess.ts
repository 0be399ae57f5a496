/**
 * Preprocessing: resize-shorter-side + center-crop to a uint8 crop, and crops → normalized
 * float32 batch tensors.
 *
 * Why: published accuracies were measured with torchvision `Resize(256)` +
 * `CenterCrop(224)` on PIL images, so the resize reproduces
 * Pillow's ImagingResample (Resample.c) exactly: separable antialiased convolution
 * (bilinear = triangle, support 1×scale; bicubic a = −0.5, support 2×scale), horizontal pass
 * first into an 8-bit intermediate, then vertical, coefficients in 22-bit fixed point with
 * PIL's rounding and clipping. Given the same decoded pixels the crop is bit-identical to
 * PIL's (verified against Pillow 9.4; see tests/fixtures/data/pil-golden.json).
 * Must not: import node: modules or depend on platform image APIs (canvas, createImageBitmap):
 * Node and the browser worker must produce identical tensors.
 *
 * Differences from PIL/torchvision, documented:
 * - Only the part of the resized image inside the crop window is computed. Each output pixel
 *   of PIL's resize depends only on its own coefficients, so this is exactly equal to a full
 *   resize followed by the crop.
 * - Normalization emulates torchvision float32 ops: fround(fround(fround(x/255) − fround(mean)) / fround(std)),
 *   which is what ToTensor + Normalize compute on CPU.
 */
import type { PreprocessSpec } from './types.ts';
import type { DecodedImage } from './decode.ts';
import { QpError } from '../util/errors.ts';
import { roundHalfToEven } from '../quant/round.ts'; // Python's round() of torchvision's CenterCrop

/** torchvision ImageNet eval transform (ResNet, MobileNet-V2): Resize(256) bilinear, CenterCrop(224). */
export const TORCHVISION_SPEC: PreprocessSpec = Object.freeze({
  resizeShorter: 256,
  crop: 224,
  interpolation: 'bilinear',
  mean: [0.485, 0.456, 0.406],
  std: [0.229, 0.224, 0.225],
  layout: 'NCHW',
}) as PreprocessSpec;

/**
 * EfficientNet-Lite, TensorFlow-canonical normalization (x − 127) / 128 on 0..255 values,
 * written as mean = 127/255, std = 128/255 on x/255. Geometry: crop fraction 0.875 of 224 ⇒
 * resize the shorter side to round(224 / 0.875) = 256, bicubic, then center-crop 224 (timm's
 * eval transform; TF crops 0.875 of the original short side first and then resizes, which
 * differs only by sub-pixel resampling).
 * NCHW, as the timm ONNX export of Lite0 takes. (The NHWC Lite4 model needs layout 'NHWC'.)
 */
export const EFFICIENTNET_LITE_SPEC: PreprocessSpec = Object.freeze({
  resizeShorter: 256,
  crop: 224,
  interpolation: 'bicubic',
  mean: [127 / 255, 127 / 255, 127 / 255],
  std: [128 / 255, 128 / 255, 128 / 255],
  layout: 'NCHW',
}) as PreprocessSpec;

/**
 * timm `efficientnet_lite0.ra_in1k` eval transform: bicubic, crop 0.875, ImageNet mean/std.
 * The timm ONNX export of Lite0 was most likely trained with this normalization, not (x−127)/128.
 */
export const EFFICIENTNET_LITE_TIMM_SPEC: PreprocessSpec = Object.freeze({
  resizeShorter: 256,
  crop: 224,
  interpolation: 'bicubic',
  mean: [0.485, 0.456, 0.406],
  std: [0.229, 0.224, 0.225],
  layout: 'NCHW',
}) as PreprocessSpec;

/** Bump when the crop algorithm changes so stale cached crops are not reused. */
const CROP_ALGO_VERSION = 1;

/**
 * Stable short key of what determines a crop (resize, crop, interpolation, algorithm
 * version), e.g. "bilinear-r256-c224-v1". Mean, std and layout are deliberately excluded:
 * crops are stored before normalization, so specs that differ only there share crops.
 */
export function specKey(spec: PreprocessSpec): string {
  return `${spec.interpolation}-r${spec.resizeShorter}-c${spec.crop}-v${CROP_ALGO_VERSION}`;
}

export function validateSpec(spec: PreprocessSpec): void {
  const okInt = (v: number) => Number.isInteger(v) && v >= 1 && v <= 4096;
  if (!okInt(spec.resizeShorter) || !okInt(spec.crop)) {
    throw new QpError(
      'CONFIG_INVALID',
      `Preprocessing sizes must be whole numbers from 1 to 4096 (got resize ${spec.resizeShorter}, crop ${spec.crop}).`,
    );
  }
  if (spec.interpolation !== 'bilinear' && spec.interpolation !== 'bicubic') {
    throw new QpError(
      'CONFIG_INVALID',
      `Unknown interpolation "${spec.interpolation as string}"; use "bilinear" or "bicubic".`,
    );
  }
  if (spec.layout !== 'NCHW' && spec.layout !== 'NHWC') {
    throw new QpError('CONFIG_INVALID', `Unknown tensor layout "${spec.layout as string}"; use "NCHW" or "NHWC".`);
  }
  for (let c = 0; c < 3; c++) {
    if (!Number.isFinite(spec.mean?.[c]) || !Number.isFinite(spec.std?.[c]) || spec.std[c] === 0) {
      throw new QpError(
        'CONFIG_INVALID',
        'Preprocessing mean and std must be three finite numbers each, and std must not be 0.',
      );
    }
  }
}

/** torchvision Resize(int) output size: shorter side → `shorter`, long = int(shorter * long / short). */
export function resizeShorterSize(width: number, height: number, shorter: number): [number, number] {
  if (width <= height) return [shorter, Math.floor((shorter * height) / width)];
  return [Math.floor((shorter * width) / height), shorter];
}

/**
 * torchvision CenterCrop offsets: top = int(round((h − crop) / 2.0)) with Python's
 * half-to-even round; when crop > size torchvision zero-pads ((crop−size)//2 before), which
 * gives a negative offset here.
 */
export function centerCropOffsets(width: number, height: number, crop: number): { left: number; top: number } {
  const axis = (size: number) => (crop > size ? -Math.floor((crop - size) / 2) : roundHalfToEven((size - crop) / 2));
  return { left: axis(width), top: axis(height) };
}

// ---------------------------------------------------------------------------------------
// Pillow ImagingResample, 8 bits per channel.

const PRECISION_BITS = 32 - 8 - 2; // 22, as Pillow
const HALF = 1 << (PRECISION_BITS - 1);
const ONE_SHIFT_8 = 1 << (PRECISION_BITS + 8); // 2^30: values ≥ this clip to 255

type FilterFn = (x: number) => number;

function bilinearFilter(x: number): number {
  if (x < 0) x = -x;
  if (x < 1) return 1 - x;
  return 0;
}

const A = -0.5;
function bicubicFilter(x: number): number {
  if (x < 0) x = -x;
  if (x < 1) return ((A + 2) * x - (A + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * A;
  return 0;
}

const FILTERS: Record<PreprocessSpec['interpolation'], { fn: FilterFn; support: number }> = {
  bilinear: { fn: bilinearFilter, support: 1 },
  bicubic: { fn: bicubicFilter, support: 2 },
};

interface AxisCoeffs {
  ksize: number;
  /** per output index: first input index, number of taps */
  xmin: Int32Array;
  count: Int32Array;
  /** fixed-point coefficients, ksize per output index */
  kk: Int32Array;
}

/** Pillow precompute_coeffs + normalize_coeffs_8bpc for output indices [from, to). */
function precomputeCoeffs(
  inSize: number,
  outSize: number,
  interp: PreprocessSpec['interpolation'],
  from: number,
  to: number,
): AxisCoeffs {
  const { fn, support: baseSupport } = FILTERS[interp];
  const scale = inSize / outSize;
  const filterscale = scale < 1 ? 1 : scale;
  const support = baseSupport * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const n = Math.max(0, to - from);
  const xminArr = new Int32Array(n);
  const countArr = new Int32Array(n);
  const kk = new Int32Array(n * ksize);
  const ss = 1 / filterscale;
  const w = new Float64Array(ksize);
  for (let i = 0; i < n; i++) {
    const xx = from + i;
    const center = (xx + 0.5) * scale;
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    xmax -= xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const v = fn((x + xmin - center + 0.5) * ss);
      w[x] = v;
      ww += v;
    }
    for (let x = 0; x < xmax; x++) {
      const k = ww !== 0 ? w[x] / ww : w[x];
      // (int)(±0.5 + k * 2^22): C truncation toward zero
      kk[i * ksize + x] =
        k < 0 ? Math.trunc(-0.5 + k * (1 << PRECISION_BITS)) : Math.trunc(0.5 + k * (1 << PRECISION_BITS));
    }
    xminArr[i] = xmin;
    countArr[i] = xmax;
  }
  return { ksize, xmin: xminArr, count: countArr, kk };
}

/**
 * Compute the window [x0, x0+cw) × [y0, y0+ch) of the image resized to outW×outH the way
 * Pillow does (Image.resize with BILINEAR/BICUBIC, no reducing_gap). Pixels of the window
 * outside the resized image are 0 (torchvision's zero padding). Returns cw×ch×3 uint8 RGB.
 */
export function resizeWindow(
  img: DecodedImage,
  outW: number,
  outH: number,
  interp: PreprocessSpec['interpolation'],
  x0: number,
  y0: number,
  cw: number,
  ch: number,
): Uint8Array {
  const { width: inW, height: inH, data: src } = img;
  if (src.length < inW * inH * 3) {
    throw new QpError('INTERNAL', `Decoded image buffer is too short (${src.length} bytes for ${inW}×${inH} RGB).`);
  }
  const out = new Uint8Array(cw * ch * 3);
  // Part of the window that lies inside the resized image.
  const ox0 = Math.max(0, x0);
  const ox1 = Math.min(outW, x0 + cw);
  const oy0 = Math.max(0, y0);
  const oy1 = Math.min(outH, y0 + ch);
  if (ox1 <= ox0 || oy1 <= oy0) return out;
  const vw = ox1 - ox0;
  const needH = outW !== inW;
  const needV = outH !== inH;

  // Vertical coefficients tell which source rows the horizontal pass must produce.
  let vc: AxisCoeffs | undefined;
  let rowFirst = oy0;
  let rowLast = oy1; // exclusive, source rows
  if (needV) {
    vc = precomputeCoeffs(inH, outH, interp, oy0, oy1);
    rowFirst = vc.xmin[0];
    rowLast = vc.xmin[oy1 - oy0 - 1] + vc.count[oy1 - oy0 - 1];
  }
  const rows = rowLast - rowFirst;

  // Horizontal pass → tmp: rows × vw × 3 (8-bit, clipped, like Pillow's intermediate image).
  let tmp: Uint8Array;
  let tmpStride: number;
  let tmpX0: number; // column in tmp that corresponds to ox0
  if (needH) {
    const hc = precomputeCoeffs(inW, outW, interp, ox0, ox1);
    const { ksize, xmin, count, kk } = hc;
    tmp = new Uint8Array(rows * vw * 3);
    tmpStride = vw * 3;
    tmpX0 = 0;
    for (let r = 0; r < rows; r++) {
      const srow = (rowFirst + r) * inW * 3;
      let d = r * tmpStride;
      for (let i = 0; i < vw; i++) {
        let s0 = HALF;
        let s1 = HALF;
        let s2 = HALF;
        const kb = i * ksize;
        let p = srow + xmin[i] * 3;
        const n = count[i];
        for (let x = 0; x < n; x++, p += 3) {
          const k = kk[kb + x];
          s0 += src[p] * k;
          s1 += src[p + 1] * k;
          s2 += src[p + 2] * k;
        }
        tmp[d++] = s0 <= 0 ? 0 : s0 >= ONE_SHIFT_8 ? 255 : s0 >> PRECISION_BITS;
        tmp[d++] = s1 <= 0 ? 0 : s1 >= ONE_SHIFT_8 ? 255 : s1 >> PRECISION_BITS;
        tmp[d++] = s2 <= 0 ? 0 : s2 >= ONE_SHIFT_8 ? 255 : s2 >> PRECISION_BITS;
      }
    }
  } else {
    // No horizontal resize: read the source rows directly (identity pass, as Pillow skips it).
    tmp = src;
    tmpStride = inW * 3;
    tmpX0 = ox0;
  }
  const tmpRowBase = needH ? rowFirst : 0; // source row index of tmp row 0

  // Vertical pass → output window.
  const outStride = cw * 3;
  const colOff = (ox0 - x0) * 3;
  for (let j = 0; j < oy1 - oy0; j++) {
    let d = (oy0 - y0 + j) * outStride + colOff;
    if (!vc) {
      // No vertical resize: copy the row.
      const s = (oy0 + j - tmpRowBase) * tmpStride + tmpX0 * 3;
      out.set(tmp.subarray(s, s + vw * 3), d);
      continue;
    }
    const { ksize, xmin, count, kk } = vc;
    const kb = j * ksize;
    const n = count[j];
    const base = (xmin[j] - tmpRowBase) * tmpStride + tmpX0 * 3;
    for (let i = 0; i < vw * 3; i += 3) {
      let s0 = HALF;
      let s1 = HALF;
      let s2 = HALF;
      let p = base + i;
      for (let y = 0; y < n; y++, p += tmpStride) {
        const k = kk[kb + y];
        s0 += tmp[p] * k;
        s1 += tmp[p + 1] * k;
        s2 += tmp[p + 2] * k;
      }
      out[d++] = s0 <= 0 ? 0 : s0 >= ONE_SHIFT_8 ? 255 : s0 >> PRECISION_BITS;
      out[d++] = s1 <= 0 ? 0 : s1 >= ONE_SHIFT_8 ? 255 : s1 >> PRECISION_BITS;
      out[d++] = s2 <= 0 ? 0 : s2 >= ONE_SHIFT_8 ? 255 : s2 >> PRECISION_BITS;
    }
  }
  return out;
}

/** Full Pillow-style resize (mainly for tests and previews). */
export function resizeImage(
  img: DecodedImage,
  outW: number,
  outH: number,
  interp: PreprocessSpec['interpolation'],
): DecodedImage {
  return { width: outW, height: outH, data: resizeWindow(img, outW, outH, interp, 0, 0, outW, outH) };
}

/** Decoded RGB image → crop×crop×3 uint8 HWC RGB, as torchvision Resize + CenterCrop on PIL. */
export function preprocessToCrop(img: DecodedImage, spec: PreprocessSpec): Uint8Array {
  validateSpec(spec);
  if (!(img.width >= 1 && img.height >= 1)) {
    throw new QpError('IMAGE_UNREADABLE', `Cannot preprocess an image of size ${img.width}×${img.height}.`);
  }
  const [rw, rh] = resizeShorterSize(img.width, img.height, spec.resizeShorter);
  const { left, top } = centerCropOffsets(rw, rh, spec.crop);
  return resizeWindow(img, rw, rh, spec.interpolation, left, top, spec.crop, spec.crop);
}

/**
 * Per-channel lookup table, 3×256 float32: value = (x/255 − mean)/std, computed with
 * float32 rounding after each step as torchvision ToTensor + Normalize do.
 */
export function normalizationTable(spec: PreprocessSpec): Float32Array {
  const f = Math.fround;
  const lut = new Float32Array(768);
  for (let c = 0; c < 3; c++) {
    const m = f(spec.mean[c]);
    const s = f(spec.std[c]);
    for (let x = 0; x < 256; x++) lut[c * 256 + x] = f(f(f(x / 255) - m) / s);
  }
  return lut;
}

/**
 * Crops (each crop×crop×3 uint8 HWC RGB) → normalized float32 batch in spec.layout
 * ([N,3,H,W] or [N,H,W,3]). `out` may be reused between batches; if it is longer than
 * needed the returned array is a view of its first N·3·H·W elements.
 */
export function cropsToTensor(crops: Uint8Array[], spec: PreprocessSpec, out?: Float32Array): Float32Array {
  const P = spec.crop * spec.crop;
  const per = P * 3;
  const total = crops.length * per;
  let dst: Float32Array;
  if (out) {
    if (out.length < total) {
      throw new QpError(
        'INTERNAL',
        `cropsToTensor: output buffer holds ${out.length} values but ${crops.length} crops need ${total}.`,
      );
    }
    dst = out.length === total ? out : out.subarray(0, total);
  } else {
    dst = new Float32Array(total);
  }
  const lut = normalizationTable(spec);
  const nchw = spec.layout === 'NCHW';
  for (let b = 0; b < crops.length; b++) {
    const c = crops[b];
    if (!c || c.length !== per) {
      throw new QpError(
        'INTERNAL',
        `cropsToTensor: crop ${b} has ${c ? c.length : 0} bytes, expected ${per} (${spec.crop}×${spec.crop}×3).`,
      );
    }
    const o = b * per;
    if (nchw) {
      const o1 = o + P;
      const o2 = o + 2 * P;
      for (let p = 0, s = 0; p < P; p++, s += 3) {
        dst[o + p] = lut[c[s]];
        dst[o1 + p] = lut[256 + c[s + 1]];
        dst[o2 + p] = lut[512 + c[s + 2]];
      }
    } else {
      for (let s = 0; s < per; s += 3) {
        dst[o + s] = lut[c[s]];
        dst[o + s + 1] = lut[256 + c[s + 1]];
        dst[o + s + 2] = lut[512 + c[s + 2]];
      }
    }
  }
  return dst;
}
