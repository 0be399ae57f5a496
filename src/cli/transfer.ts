/**
 * `npm run bench:transfer`: what a first visit downloads, from the build and the embedded
 * manifests (nothing is fetched): the app (every file the service worker precaches, which
 * a first visit fetches whether or not it runs anything), split into the engine's scripts,
 * the JPEG decoder and the rest, raw and gzip-compressed; the engine binary per kind of
 * browser (with or without WebGPU); the model; and the images a given
 * experiment reads (its calibration and evaluation split). For the "Try it" experiment it
 * proposes the split that keeps model + images within a budget and shows the 95% Wilson
 * interval that evaluation size gives; for each lesson, what its link needs.
 * Must not: download anything, or guess sizes (all come from files or manifests).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { bytesOf, filesForSplit, getImageSet } from '../lib/data/image-sets.ts';
import { getModelEntry } from '../lib/models/registry.ts';
import { parse } from '../lib/config/url.ts';
import { wilsonInterval } from '../lib/quant/metrics.ts';
import { LESSONS } from '../lessons/index.ts';
import { QpError } from '../lib/util/errors.ts';
import { findEngineBinaries } from '../lib/offline/engine-cache.ts';

export interface FileGroup {
  name: string;
  files: string[];
  bytes: number;
  /** gzip level 6, the usual on-the-fly compression of static hosts */
  gzip: number;
}

const MB = (n: number) => `${(n / 1e6).toFixed(1)} MB`;

/**
 * The files the service worker precaches (its manifest in sw.js), plus sw.js, its Workbox
 * runtime and the scripts it imports (the engine keeper).
 */
export function precachedFiles(dist: string): string[] {
  const sw = join(dist, 'sw.js');
  if (!existsSync(sw)) throw new QpError('FILE_NOT_FOUND', `${dist} has no sw.js: run \`npm run build\` first.`);
  const text = readFileSync(sw, 'utf8');
  const urls = [...text.matchAll(/\{url:"([^"]+)",revision:/g)].map((m) => m[1]);
  const runtime = [...text.matchAll(/"\.\/(workbox-[0-9a-f]+)"/g)].map((m) => `${m[1]}.js`);
  const imported = [...text.matchAll(/importScripts\("([^"]+)"\)/g)].map((m) => m[1]);
  return [...new Set([...urls, 'sw.js', ...runtime, ...imported])];
}

function fileGroup(dist: string, name: string, files: string[]): FileGroup {
  const bytes = files.reduce((s, f) => s + statSync(join(dist, f)).size, 0);
  const gzip = files.reduce((s, f) => s + gzipSync(readFileSync(join(dist, f)), { level: 6 }).byteLength, 0);
  return { name, files, bytes, gzip };
}

/** The app's precached files in groups: the engine's scripts (onnxruntime), JPEG decoder, the rest. */
export function appGroups(dist: string): FileGroup[] {
  const files = precachedFiles(dist);
  const engine = (f: string) => /(^|\/)ort[.-]/.test(f);
  const decoder = (f: string) => /mozjpeg|decode\.worker/.test(f);
  return [
    fileGroup(dist, 'engine scripts (onnxruntime-web)', files.filter(engine)),
    fileGroup(dist, 'JPEG decoder (mozjpeg wasm and its worker)', files.filter(decoder)),
    fileGroup(
      dist,
      'app (pages, scripts, styles, service worker)',
      files.filter((f) => !engine(f) && !decoder(f)),
    ),
  ];
}

/**
 * The engine binary each kind of browser fetches on a first visit (src/lib/engine/browser.ts
 * picks the build, the installing service worker stores the same one:
 * src/lib/offline/engine-cache.ts): the plain wasm build without WebGPU, the WebGPU build
 * (which also runs wasm) with it. Neither is precached.
 */
export function engineBinaries(dist: string): { without: FileGroup; with: FileGroup } {
  const assets = join(dist, 'assets');
  const names = existsSync(assets) ? readdirSync(assets).map((f) => `assets/${f}`) : [];
  let found: { webgpu: string; wasm: string };
  try {
    found = findEngineBinaries(names);
  } catch (e) {
    throw new QpError('FILE_NOT_FOUND', `${dist} has ${(e as Error).message}: run \`npm run build\` again.`);
  }
  return {
    without: fileGroup(dist, 'browsers without WebGPU: the plain wasm build', [found.wasm]),
    with: fileGroup(dist, 'browsers with WebGPU: the WebGPU build', [found.webgpu]),
  };
}

export interface SplitCost {
  calib: number;
  eval: number;
  images: number;
  bytes: number;
}

/** Images and bytes of the registry sample a split reads (the largest over `seeds`). */
export async function splitCost(calib: number, evalCount: number, seeds: readonly number[] = [0]): Promise<SplitCost> {
  const m = await getImageSet('imagenet-sample').load();
  let worst = 0;
  for (const s of seeds) worst = Math.max(worst, bytesOf(filesForSplit(m, calib, evalCount, s)));
  return { calib, eval: evalCount, images: calib + evalCount, bytes: worst };
}

/** The 95% Wilson interval's half-width in points at accuracy `p` on `n` images. */
export function halfWidthPoints(p: number, n: number): number {
  const [lo, hi] = wilsonInterval(Math.round(p * n), n);
  return ((hi - lo) / 2) * 100;
}

export interface TryItOption extends SplitCost {
  /** model + images */
  total: number;
  halfWidth: number;
}

/**
 * Splits for the "Try it" experiment: calibration `calib`, evaluation sizes `evals`, each
 * with its download (worst case over seeds 0–9) and interval half-width at accuracy `p`;
 * `pick` is the largest evaluation that keeps model + images within `budget`.
 */
export async function tryItOptions(opts: {
  modelBytes: number;
  budget: number;
  calib: number;
  evals: number[];
  p: number;
}): Promise<{ options: TryItOption[]; pick?: TryItOption }> {
  const seeds = Array.from({ length: 10 }, (_, i) => i);
  const options: TryItOption[] = [];
  for (const e of opts.evals) {
    const c = await splitCost(opts.calib, e, seeds);
    options.push({ ...c, total: opts.modelBytes + c.bytes, halfWidth: halfWidthPoints(opts.p, e) });
  }
  const fits = options.filter((o) => o.total <= opts.budget);
  return { options, pick: fits.at(-1) };
}

/** What each lesson's link reads: its split's images and bytes. */
export async function lessonCosts(): Promise<(SplitCost & { id: string; title: string })[]> {
  const out = [];
  for (const l of LESSONS) {
    const c = parse(l.link).config;
    out.push({ id: l.id, title: l.title, ...(await splitCost(c.calib, c.eval, [c.seed])) });
  }
  return out;
}

/** The report as text lines. */
export async function transferReport(dist: string, opts: { budgetMB?: number; p?: number } = {}): Promise<string[]> {
  const budget = (opts.budgetMB ?? 40) * 1e6;
  // the pick keeps a margin below the budget for the requests' own overhead and a user's other seed
  const margin = 1.5e6;
  const p = opts.p ?? 0.83;
  const lines: string[] = [];
  const groups = appGroups(dist);
  const app = { bytes: bytesOf(groups), gzip: groups.reduce((s, g) => s + g.gzip, 0) };
  lines.push('First visit, the app (all files the service worker precaches; raw / gzip -6):');
  for (const g of groups) lines.push(`  ${g.name}: ${g.files.length} files, ${MB(g.bytes)} / ${MB(g.gzip)}`);
  lines.push(`  total: ${MB(app.bytes)} / ${MB(app.gzip)}`);
  lines.push('', 'and the one engine binary the browser loads (stored by the service worker as it installs):');
  for (const b of Object.values(engineBinaries(dist)))
    lines.push(
      `  ${b.name}: ${MB(b.bytes)} / ${MB(b.gzip)}; with the app ${MB(app.bytes + b.bytes)} / ${MB(app.gzip + b.gzip)}`,
    );
  const model = getModelEntry('mobilenet-v2').downloads[0];
  const set = getImageSet('imagenet-sample');
  lines.push(
    '',
    `Model: MobileNet-V2 (${model.url.split('/').pop()}): ${MB(model.bytes)} (float weights; hosts send it uncompressed).`,
  );
  lines.push(
    `Images: the ImageNet sample, ${set.images} JPEGs, ${MB(set.totalBytes)} in all; only a split's images are fetched.`,
  );
  const calib = 32;
  const { options, pick } = await tryItOptions({
    modelBytes: model.bytes,
    budget: budget - margin,
    calib,
    evals: [64, 100, 128, 150, 160, 176, 184, 192, 200, 250],
    p,
  });
  lines.push(
    '',
    `"Try it" (MobileNet-V2, ${calib} calibration images; images: the largest over seeds 0-9; ±: 95% Wilson half-width at ${(p * 100).toFixed(0)}% top-1;`,
    `proposed: the largest evaluation within ${MB(budget - margin)}, ${MB(margin)} below the ${MB(budget)} budget):`,
  );
  for (const o of options)
    lines.push(
      `  eval ${String(o.eval).padStart(3)}: images ${MB(o.bytes).padStart(8)}, model + images ${MB(o.total).padStart(8)}, ±${o.halfWidth.toFixed(1)} points${o.total > budget ? '  (over the budget)' : ''}${o === pick ? '  <- proposed' : ''}`,
    );
  const full = await splitCost(128, 872, [0]);
  lines.push(
    `  the full evaluation (128 + 872 images): images ${MB(full.bytes)}, model + images ${MB(model.bytes + full.bytes)}, ±${halfWidthPoints(p, 872).toFixed(1)} points`,
  );
  lines.push('', 'Each lesson as its link opens it (MobileNet-V2 + the images of its split):');
  for (const l of await lessonCosts())
    lines.push(
      `  ${l.id.padEnd(26)} calib ${String(l.calib).padStart(3)} + eval ${String(l.eval).padStart(3)}: images ${MB(l.bytes).padStart(8)}, with the model ${MB(l.bytes + model.bytes).padStart(8)}`,
    );
  lines.push(
    '',
    `A second visit downloads none of it: the app from the service worker, model and images from IndexedDB.`,
  );
  return lines;
}

/** The command line of `npm run bench:transfer [-- DIST]`. */
export async function main(argv: string[], log: (line: string) => void = console.log): Promise<number> {
  const dist = argv.find((a) => !a.startsWith('-')) ?? 'dist';
  try {
    for (const l of await transferReport(dist)) log(l);
    return 0;
  } catch (e) {
    console.error(e instanceof Error ? e.message : String(e));
    return 1;
  }
}
