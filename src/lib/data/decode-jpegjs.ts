/**
 * Pure-JavaScript image decoding (jpeg-js, fast-png) to 8-bit RGB: PNG always, and the JPEGs
 * libjpeg-turbo's RGB output cannot take (CMYK/YCCK), plus the jpeg-js baseline that
 * `bench:perf` measures the wasm decoder against. decode.ts is the entry point.
 *
 * Why: Node and the browser Web Worker must produce bit-identical pixels, so this is pure
 * JavaScript instead of sharp or createImageBitmap, whose output differs between platforms.
 * Must not: import node: modules, touch the DOM, or throw anything but QpError
 * (IMAGE_UNREADABLE / IMAGE_TOO_LARGE) for bad input.
 *
 * Closeness to PIL (libjpeg-turbo, the reference for the published accuracies): for YCbCr
 * JPEGs jpeg-js only supplies the Y/Cb/Cr planes; chroma upsampling (libjpeg's "fancy"
 * triangle filter for 4:2:0, 4:2:2, 4:4:0) and the YCbCr→RGB conversion (libjpeg's fixed-point
 * tables, rounded) are done here exactly as libjpeg does them. jpeg-js's own conversion
 * truncates (a −0.5 level bias in G) and replicates chroma. What remains different is
 * jpeg-js's IDCT (±1 level on some samples, unbiased).
 */
import jpeg from 'jpeg-js';
import { decode as decodePng, convertIndexedToRgb } from 'fast-png';
import { QpError } from '../util/errors.ts';

export interface DecodedImage {
  width: number;
  height: number;
  /** RGB, 3 bytes per pixel, row-major (HWC) */
  data: Uint8Array;
}

export interface DecodeLimits {
  /** refuse images with more pixels than this (megapixels, 1e6) */
  maxMegapixels: number;
  /** refuse images whose decoder working memory would exceed this (MiB) */
  maxMemoryMB: number;
}

/**
 * Defaults: the largest ImageNet images are ~10 MP; jpeg-js needs about 20 bytes per pixel
 * while decoding, so 40 MP stays under ~1 GB even in a browser worker.
 */
export const DEFAULT_DECODE_LIMITS: DecodeLimits = { maxMegapixels: 40, maxMemoryMB: 1024 };

export const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

export function startsWith(b: Uint8Array, magic: number[], at = 0): boolean {
  if (b.length < at + magic.length) return false;
  for (let i = 0; i < magic.length; i++) if (b[at + i] !== magic[i]) return false;
  return true;
}

/** Name the container of bytes we cannot decode, for a helpful message. */
export function sniffOtherFormat(b: Uint8Array): string | undefined {
  if (startsWith(b, [0x47, 0x49, 0x46, 0x38])) return 'GIF';
  if (startsWith(b, [0x52, 0x49, 0x46, 0x46]) && startsWith(b, [0x57, 0x45, 0x42, 0x50], 8)) return 'WebP';
  if (startsWith(b, [0x42, 0x4d])) return 'BMP';
  if (startsWith(b, [0x49, 0x49, 0x2a, 0x00]) || startsWith(b, [0x4d, 0x4d, 0x00, 0x2a])) return 'TIFF';
  if (startsWith(b, [0x66, 0x74, 0x79, 0x70], 4)) return 'HEIF/AVIF';
  if (b[0] === 0x3c) return 'HTML/XML (text)';
  return undefined;
}

export function label(id: string | undefined): string {
  return id ? `Image "${id}"` : 'The image';
}

export function tooLarge(id: string | undefined, w: number, h: number, limits: DecodeLimits): QpError {
  const mp = (w * h) / 1e6;
  return new QpError(
    'IMAGE_TOO_LARGE',
    `${label(id)} is too large to decode (${w}×${h}, ${mp.toFixed(1)} MP; the limit is ${limits.maxMegapixels} MP). ` +
      'Downscale it (any side ≤ 4000 px is plenty for 224-pixel models) or remove it from the data set.',
  );
}

/**
 * Which decoder the bytes need: 'png' or 'jpeg'. Throws QpError IMAGE_UNREADABLE, naming the
 * file, for empty bytes and for anything else (another image format or unknown content).
 */
export function imageKind(bytes: Uint8Array, id?: string): 'png' | 'jpeg' {
  if (!bytes || bytes.length === 0) {
    throw new QpError(
      'IMAGE_UNREADABLE',
      `${label(id)} is empty (0 bytes). Re-download or re-copy it, or remove it from the data set.`,
    );
  }
  if (startsWith(bytes, PNG_MAGIC)) return 'png';
  if (!(bytes.length >= 3 && bytes[0] === 0xff && bytes[1] === 0xd8 && bytes[2] === 0xff)) {
    const other = sniffOtherFormat(bytes);
    throw new QpError(
      'IMAGE_UNREADABLE',
      other
        ? `${label(id)} is a ${other} file, not a JPEG or PNG. Convert it to JPEG or remove it from the data set.`
        : `${label(id)} is not a JPEG or PNG file (unknown content, ${bytes.length} bytes). Replace it with a JPEG or remove it from the data set.`,
    );
  }
  return 'jpeg';
}

/**
 * Decode JPEG (baseline or progressive; grayscale, YCbCr, RGB, CMYK/YCCK) or PNG bytes to RGB.
 * Grayscale is replicated to three channels, alpha is dropped (as PIL's convert('RGB')),
 * 16-bit PNG samples keep their high byte.
 */
export function decodeImageJpegJs(
  bytes: Uint8Array,
  id?: string,
  limits: DecodeLimits = DEFAULT_DECODE_LIMITS,
): DecodedImage {
  if (imageKind(bytes, id) === 'png') return decodePngToRgb(bytes, id, limits);
  let raw: { width: number; height: number; data: Uint8Array };
  const info = jpegInfo(bytes);
  // Plain 3-component JPEG without an Adobe marker: YCbCr per JFIF. Take the raw planes and
  // convert like libjpeg (see header). Anything else: jpeg-js's conversion.
  const ownYcc = !!info && info.components.length === 3 && !info.adobe;
  try {
    raw = jpeg.decode(bytes, {
      useTArray: true,
      formatAsRGBA: false,
      colorTransform: ownYcc ? false : undefined,
      tolerantDecoding: true,
      maxResolutionInMP: limits.maxMegapixels,
      maxMemoryUsageInMB: limits.maxMemoryMB,
    });
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    if (/maxResolutionInMP|maxMemoryUsageInMB|allocate enough memory/.test(msg)) {
      const dims = jpegDimensions(bytes);
      if (dims && dims[0] * dims[1] > limits.maxMegapixels * 1e6) throw tooLarge(id, dims[0], dims[1], limits);
      throw new QpError(
        'IMAGE_TOO_LARGE',
        `${label(id)} is too large to decode within ${limits.maxMemoryMB} MB (${msg}). Downscale it or remove it from the data set.`,
      );
    }
    throw new QpError(
      'IMAGE_UNREADABLE',
      `${label(id)} could not be decoded as JPEG (${msg}); the file is probably truncated or corrupt. Re-download it or remove it from the data set.`,
    );
  }
  if (!raw.width || !raw.height || raw.data.length !== raw.width * raw.height * 3) {
    throw new QpError(
      'IMAGE_UNREADABLE',
      `${label(id)} decoded to an empty or inconsistent picture (${raw.width}×${raw.height}). Re-download it or remove it from the data set.`,
    );
  }
  if (ownYcc && info) {
    const [y, cb, cr] = info.components;
    const maxH = Math.max(y.h, cb.h, cr.h);
    const maxV = Math.max(y.v, cb.v, cr.v);
    const sameChroma = cb.h === cr.h && cb.v === cr.v && y.h === maxH && y.v === maxV;
    const hf = sameChroma && maxH % cb.h === 0 ? maxH / cb.h : 0;
    const vf = sameChroma && maxV % cb.v === 0 ? maxV / cb.v : 0;
    return { width: raw.width, height: raw.height, data: yccToRgb(raw.data, raw.width, raw.height, hf, vf) };
  }
  return { width: raw.width, height: raw.height, data: raw.data };
}

interface JpegInfo {
  width: number;
  height: number;
  components: { h: number; v: number }[];
  adobe: boolean;
}

/** Markers before the first scan: frame size, sampling factors, Adobe APP14 presence. */
export function jpegInfo(b: Uint8Array): JpegInfo | undefined {
  let i = 2;
  let adobe = false;
  while (i + 9 < b.length) {
    if (b[i] !== 0xff) {
      i++;
      continue;
    }
    const m = b[i + 1];
    if (m === 0xff || m === 0x01 || (m >= 0xd0 && m <= 0xd8)) {
      i += m === 0xff ? 1 : 2;
      continue;
    }
    if (
      m === 0xee &&
      b[i + 4] === 0x41 &&
      b[i + 5] === 0x64 &&
      b[i + 6] === 0x6f &&
      b[i + 7] === 0x62 &&
      b[i + 8] === 0x65
    )
      adobe = true;
    if (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) {
      const n = b[i + 9];
      const components = [];
      for (let k = 0; k < n && i + 12 + k * 3 <= b.length; k++) {
        const hv = b[i + 11 + k * 3];
        components.push({ h: hv >> 4, v: hv & 15 });
      }
      return { width: (b[i + 7] << 8) | b[i + 8], height: (b[i + 5] << 8) | b[i + 6], components, adobe };
    }
    i += 2 + ((b[i + 2] << 8) | b[i + 3]);
  }
  return undefined;
}

/** Width and height from the first SOFn marker, or undefined. */
export function jpegDimensions(b: Uint8Array): [number, number] | undefined {
  const info = jpegInfo(b);
  return info ? [info.width, info.height] : undefined;
}

// libjpeg jdcolor.c build_ycc_rgb_table (SCALEBITS 16, rounded).
const SCALEBITS = 16;
const ONE_HALF = 1 << (SCALEBITS - 1);
const FIX = (x: number) => Math.floor(x * (1 << SCALEBITS) + 0.5);
const CR_R = new Int32Array(256);
const CB_B = new Int32Array(256);
const CR_G = new Int32Array(256);
const CB_G = new Int32Array(256);
for (let i = 0; i < 256; i++) {
  const x = i - 128;
  CR_R[i] = (FIX(1.402) * x + ONE_HALF) >> SCALEBITS;
  CB_B[i] = (FIX(1.772) * x + ONE_HALF) >> SCALEBITS;
  CR_G[i] = -FIX(0.71414) * x;
  CB_G[i] = -FIX(0.34414) * x + ONE_HALF;
}
const clamp255 = (v: number) => (v < 0 ? 0 : v > 255 ? 255 : v);

/**
 * jpeg-js raw output (Y, Cb, Cr interleaved at full size, chroma replicated by
 * floor(x / hf), floor(y / vf)) → RGB as libjpeg-turbo with do_fancy_upsampling.
 * hf/vf: horizontal/vertical chroma subsampling factors; 0 = unusual layout (replicate).
 */
function yccToRgb(raw: Uint8Array, W: number, H: number, hf: number, vf: number): Uint8Array {
  const fancy = (hf === 1 || hf === 2) && (vf === 1 || vf === 2);
  const out = new Uint8Array(W * H * 3);
  if (!fancy || (hf === 1 && vf === 1)) {
    // 4:4:4 (or replicated chroma, as libjpeg's int_upsample for unusual factors): in place
    for (let d = 0; d < out.length; d += 3) {
      const y = raw[d];
      const b = raw[d + 1];
      const r = raw[d + 2];
      out[d] = clamp255(y + CR_R[r]);
      out[d + 1] = clamp255(y + ((CB_G[b] + CR_G[r]) >> SCALEBITS));
      out[d + 2] = clamp255(y + CB_B[b]);
    }
    return out;
  }
  const cb = new Uint8Array(W * H);
  const cr = new Uint8Array(W * H);
  const cw = Math.ceil(W / hf);
  const ch = Math.ceil(H / vf);
  for (const [c, dst] of [
    [1, cb],
    [2, cr],
  ] as const) {
    const plane = new Uint8Array(cw * ch);
    for (let y = 0; y < ch; y++) for (let x = 0; x < cw; x++) plane[y * cw + x] = raw[(y * vf * W + x * hf) * 3 + c];
    upsampleFancy(plane, cw, ch, hf, vf, dst, W, H);
  }
  for (let p = 0, d = 0; p < W * H; p++, d += 3) {
    const y = raw[d];
    const b = cb[p];
    const r = cr[p];
    out[d] = clamp255(y + CR_R[r]);
    out[d + 1] = clamp255(y + ((CB_G[b] + CR_G[r]) >> SCALEBITS));
    out[d + 2] = clamp255(y + CB_B[b]);
  }
  return out;
}

/** libjpeg-turbo jdsample.c h2v1 / h1v2 / h2v2 fancy upsampling into dst (W×H). */
export function upsampleFancy(
  src: Uint8Array,
  cw: number,
  ch: number,
  hf: number,
  vf: number,
  dst: Uint8Array,
  W: number,
  H: number,
): void {
  // Vertical step (h?v2): each output row mixes its nearest input row (×3) with the next
  // nearest (edge rows replicated). Column sums are kept at ×4 scale for h2v2.
  const row = new Int32Array(cw);
  const wide = new Uint8Array(2 * cw);
  for (let oy = 0; oy < H; oy++) {
    const iy = vf === 2 ? oy >> 1 : oy;
    const r0 = src.subarray(iy * cw, iy * cw + cw);
    if (vf === 2) {
      const ny = oy & 1 ? Math.min(ch - 1, iy + 1) : Math.max(0, iy - 1);
      const r1 = src.subarray(ny * cw, ny * cw + cw);
      for (let x = 0; x < cw; x++) row[x] = r0[x] * 3 + r1[x];
    } else {
      for (let x = 0; x < cw; x++) row[x] = r0[x];
    }
    const o = oy * W;
    if (hf === 2 && vf === 2) {
      // h2v2_fancy_upsample
      for (let x = 0; x < cw; x++) {
        const t = row[x];
        const l = x > 0 ? row[x - 1] : t;
        const n = x < cw - 1 ? row[x + 1] : t;
        wide[2 * x] = x === 0 ? (t * 4 + 8) >> 4 : (t * 3 + l + 8) >> 4;
        wide[2 * x + 1] = x === cw - 1 ? (t * 4 + 7) >> 4 : (t * 3 + n + 7) >> 4;
      }
      dst.set(wide.subarray(0, W), o);
    } else if (hf === 2) {
      // h2v1_fancy_upsample
      for (let x = 0; x < cw; x++) {
        const t = row[x];
        wide[2 * x] = x === 0 ? t : (t * 3 + row[x - 1] + 1) >> 2;
        wide[2 * x + 1] = x === cw - 1 ? t : (t * 3 + row[x + 1] + 2) >> 2;
      }
      dst.set(wide.subarray(0, W), o);
    } else {
      // h1v2_fancy_upsample: bias 1 for the upper output row, 2 for the lower
      const bias = oy & 1 ? 2 : 1;
      for (let x = 0; x < W; x++) dst[o + x] = (row[x] + bias) >> 2;
    }
  }
}

export function decodePngToRgb(bytes: Uint8Array, id: string | undefined, limits: DecodeLimits): DecodedImage {
  // IHDR is always the first chunk: width at 16, height at 20 (big endian).
  if (bytes.length >= 24) {
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const w = dv.getUint32(16);
    const h = dv.getUint32(20);
    if (w * h > limits.maxMegapixels * 1e6) throw tooLarge(id, w, h, limits);
  }
  let png: ReturnType<typeof decodePng>;
  try {
    png = decodePng(bytes);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    throw new QpError(
      'IMAGE_UNREADABLE',
      `${label(id)} is a PNG file that could not be decoded (${msg}); it is probably truncated or corrupt. Re-download it or remove it from the data set.`,
    );
  }
  const { width, height } = png;
  const n = width * height;
  let src: ArrayLike<number> = png.data;
  let channels = png.channels;
  if (png.palette) {
    src = convertIndexedToRgb(png);
    channels = png.palette[0].length;
  }
  const shift = png.depth === 16 ? 8 : 0;
  if (png.depth < 8 && !png.palette) {
    src = unpackLowDepthGray(png.data as Uint8Array, width, height, png.depth);
    channels = 1;
  }
  if (src.length < n * channels) {
    throw new QpError(
      'IMAGE_UNREADABLE',
      `${label(id)} is a PNG file whose pixel data is incomplete. Re-download it or remove it from the data set.`,
    );
  }
  const out = new Uint8Array(n * 3);
  if (channels >= 3) {
    for (let p = 0, s = 0, d = 0; p < n; p++, s += channels, d += 3) {
      out[d] = src[s] >> shift;
      out[d + 1] = src[s + 1] >> shift;
      out[d + 2] = src[s + 2] >> shift;
    }
  } else {
    // gray or gray+alpha: replicate, drop alpha
    for (let p = 0, s = 0, d = 0; p < n; p++, s += channels, d += 3) {
      const v = src[s] >> shift;
      out[d] = v;
      out[d + 1] = v;
      out[d + 2] = v;
    }
  }
  return { width, height, data: out };
}

/** 1/2/4-bit grayscale rows (byte aligned) → 8-bit, scaled to 0..255 as PIL does. */
function unpackLowDepthGray(packed: Uint8Array, width: number, height: number, depth: number): Uint8Array {
  const out = new Uint8Array(width * height);
  const rowBytes = Math.ceil((width * depth) / 8);
  const maxv = (1 << depth) - 1;
  const scale = 255 / maxv;
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const bit = x * depth;
      const byte = packed[y * rowBytes + (bit >> 3)];
      const v = (byte >> (8 - depth - (bit & 7))) & maxv;
      out[y * width + x] = Math.round(v * scale);
    }
  }
  return out;
}
