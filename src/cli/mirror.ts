/**
 * `npm run mirror`: a self-contained mirror of the registry's files for a classroom server
 * or a site's own `./mirror/` folder. It holds the image sets under their public names
 * (`imagenet-sample/n01440764_tench.JPEG`, so a mirror serves the same paths as the public
 * source), each set's class index and a `manifest.json` (so the app's "folder URL" field
 * loads it too), the registry's models under `models/`, and `catalog.json` listing every
 * file with size and sha256. Files come from the public sources (verified downloads) or,
 * with `from`, from a local copy in the layout of ../shared/data; every file is verified
 * against the registry, and files already in the output that verify are kept.
 * Must not: write a file that was not verified, or leave a half-written one (temp + rename).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { CATALOG_FILE, serializeCatalog, type CatalogFile } from '../lib/data/catalog.ts';
import { getFiles, type DownloadEnv, type TransferProgress } from '../lib/data/downloads.ts';
import { bytesOf, classIndexText, IMAGE_SET_REGISTRY, imageUrls, type ImageSetEntry } from '../lib/data/image-sets.ts';
import { knownHashes, MODEL_REGISTRY, type ModelEntry } from '../lib/models/registry.ts';
import { publicModelFileName } from '../lib/models/sources.ts';
import { QpError } from '../lib/util/errors.ts';
import { parseCli, PATH, reportCliError, TEXT, usage, type CliSpec } from './options.ts';

export interface MirrorOptions {
  /** the folder to write (created when missing) */
  out: string;
  /** a local copy to take files from instead of downloading: `models/*.onnx`, `<set>/{wnid}.JPEG` */
  from?: string;
  /** registry model ids to include (default: all) */
  models?: string[];
  /** how to download (Node's fetch); unused with `from` */
  env?: DownloadEnv;
  log?: (line: string) => void;
  concurrency?: number;
}

export interface MirrorReport {
  files: CatalogFile[];
  /** bytes of all files in the mirror */
  bytes: number;
  /** files written now (the rest were already there and verified) */
  written: number;
  /** registry models the mirror does not hold (clients use their public source) */
  missingModels: string[];
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const MB = (n: number) => `${(n / 1e6).toFixed(1)} MB`;

async function writeAtomic(file: string, bytes: Uint8Array | string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const tmp = `${file}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, bytes);
    await rename(tmp, file);
  } catch (e) {
    await unlink(tmp).catch(() => undefined);
    throw e;
  }
}

/** Whether `file` already holds exactly these bytes. */
async function verified(file: string, want: { bytes: number; sha256: string }): Promise<boolean> {
  try {
    if ((await stat(file)).size !== want.bytes) return false;
    return sha256(new Uint8Array(await readFile(file))) === want.sha256;
  } catch {
    return false;
  }
}

async function readIfExists(file: string): Promise<Uint8Array | undefined> {
  try {
    return new Uint8Array(await readFile(file));
  } catch {
    return undefined;
  }
}

class Mirror {
  files: CatalogFile[] = [];
  written = 0;
  constructor(
    readonly out: string,
    readonly log: (line: string) => void,
  ) {}

  /** Records a file; writes it unless an identical one is there. */
  async put(rel: string, bytes: Uint8Array, extra: Omit<CatalogFile, 'path' | 'bytes' | 'sha256'> = {}): Promise<void> {
    const entry: CatalogFile = { path: rel, bytes: bytes.byteLength, sha256: sha256(bytes), ...extra };
    const file = path.join(this.out, ...rel.split('/'));
    if (!(await verified(file, entry))) {
      await writeAtomic(file, bytes);
      this.written++;
    }
    this.files.push(entry);
  }
}

async function mirrorImageSet(m: Mirror, set: ImageSetEntry, opts: MirrorOptions): Promise<void> {
  const manifest = await set.load();
  const dir = set.folder.replace(/\/$/, '');
  const target = (file: string) => path.join(m.out, dir, file);
  // files already in the output, verified, need nothing
  const present = await Promise.all(manifest.files.map((f) => verified(target(f.file), f)));
  const todo = manifest.files.filter((_, i) => !present[i]);
  m.log(
    `${set.id}: ${manifest.files.length - todo.length} of ${manifest.files.length} images already in the mirror; ` +
      `${todo.length} to ${opts.from ? 'copy' : 'download'} (${MB(bytesOf(todo))}).`,
  );
  if (opts.from) {
    const problems: string[] = [];
    for (const f of todo) {
      // a copy in the shared layout names files {wnid}.JPEG; another mirror uses the public name
      const src = [path.join(opts.from, dir, f.id), path.join(opts.from, dir, f.file)];
      let bytes: Uint8Array | undefined;
      for (const s of src) if (!bytes) bytes = await readIfExists(s);
      if (!bytes) problems.push(`${f.id} is missing`);
      else if (bytes.byteLength !== f.bytes || sha256(bytes) !== f.sha256)
        problems.push(`${f.id} has sha256 ${sha256(bytes)}, not ${f.sha256}`);
      else {
        await writeAtomic(target(f.file), bytes);
        m.written++;
      }
    }
    if (problems.length)
      throw new QpError(
        'DATA_SHA_MISMATCH',
        `${path.join(opts.from, dir)} is not the registry's ${set.id}: ${problems.slice(0, 5).join('; ')}${problems.length > 5 ? `; and ${problems.length - 5} more` : ''}. Use an unmodified copy, or leave out --from to download the public files.`,
      );
  } else if (todo.length) {
    if (!opts.env) throw new QpError('INTERNAL', 'No way to download was given.');
    let last = 0;
    const writes: Promise<void>[] = [];
    const downloads = getFiles(
      opts.env,
      todo.map((f) => ({ name: f.file, bytes: f.bytes, sha256: f.sha256, urls: imageUrls(set, f.file) })),
      {
        concurrency: opts.concurrency ?? 8,
        kind: 'image',
        onFile: (i, bytes) => writes.push(writeAtomic(target(todo[i].file), bytes).then(() => void m.written++)),
        onProgress: (p: TransferProgress) => {
          if (p.files - last >= 100 || p.files === p.totalFiles) {
            last = p.files;
            m.log(`${set.id}: ${p.files} of ${p.totalFiles} images, ${MB(p.bytes)} of ${MB(p.totalBytes)}.`);
          }
        },
      },
    );
    try {
      await downloads;
    } finally {
      // files verified before a failure are kept for the next try
      await Promise.allSettled(writes);
    }
    await Promise.all(writes);
  }
  for (const f of manifest.files)
    m.files.push({ path: `${dir}/${f.file}`, bytes: f.bytes, sha256: f.sha256, imageSet: set.id });
  const ci = new TextEncoder().encode(classIndexText(manifest.classIndex));
  if (ci.byteLength !== set.classIndexFile.bytes || sha256(ci) !== set.classIndexFile.sha256)
    throw new QpError('INTERNAL', `The class index rebuilt for ${set.id} does not match the registry's sha256.`);
  await m.put(`${dir}/${set.classIndexFile.name}`, ci, { imageSet: set.id });
  const legacy = JSON.stringify({ files: manifest.files.map((f) => f.file), classIndex: set.classIndexFile.name });
  await m.put(`${dir}/manifest.json`, new TextEncoder().encode(`${legacy}\n`), { imageSet: set.id });
}

/** Local .onnx files of `from/models` that are known copies of a registry model. */
async function localModels(from: string): Promise<{ file: string; name: string; bytes: Uint8Array; sha: string }[]> {
  const dir = path.join(from, 'models');
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => n.toLowerCase().endsWith('.onnx')).sort();
  } catch {
    return [];
  }
  return Promise.all(
    names.map(async (name) => {
      const bytes = new Uint8Array(await readFile(path.join(dir, name)));
      return { file: path.join(dir, name), name, bytes, sha: sha256(bytes) };
    }),
  );
}

async function mirrorModel(
  m: Mirror,
  e: ModelEntry,
  opts: MirrorOptions,
  local: Awaited<ReturnType<typeof localModels>>,
) {
  const known = new Set(knownHashes(e));
  if (opts.from) {
    const copies = local.filter((l) => known.has(l.sha));
    for (const c of copies) {
      const d = e.downloads.find((x) => x.sha256 === c.sha);
      // the registry's own file keeps its public name; another copy its local one
      await m.put(`models/${d ? publicModelFileName(d.url) : c.name}`, c.bytes, { model: e.id });
      m.log(`${e.id}: ${c.name} (${MB(c.bytes.byteLength)}, sha256 ${c.sha.slice(0, 12)}…).`);
    }
    return copies.length > 0;
  }
  const d = e.downloads[0];
  const rel = `models/${publicModelFileName(d.url)}`;
  const file = path.join(m.out, 'models', publicModelFileName(d.url));
  if (!(await verified(file, d))) {
    if (!opts.env) throw new QpError('INTERNAL', 'No way to download was given.');
    m.log(`${e.id}: downloading ${d.url} (${MB(d.bytes)}).`);
    const [bytes] = await getFiles(
      opts.env,
      [{ name: publicModelFileName(d.url), bytes: d.bytes, sha256: d.sha256, urls: [d.url] }],
      { kind: 'model' },
    );
    await writeAtomic(file, bytes);
    m.written++;
  }
  m.files.push({ path: rel, bytes: d.bytes, sha256: d.sha256, model: e.id });
  return true;
}

/** Writes (or completes) a mirror in `opts.out`. Throws QpError naming what failed. */
export async function writeMirror(opts: MirrorOptions): Promise<MirrorReport> {
  const log = opts.log ?? (() => undefined);
  const ids = opts.models ?? MODEL_REGISTRY.map((e) => e.id);
  const unknown = ids.filter((id) => !MODEL_REGISTRY.some((e) => e.id === id));
  if (unknown.length)
    throw new QpError(
      'ARG_INVALID',
      `There is no registry model named ${unknown.join(', ')}. Choose from ${MODEL_REGISTRY.map((e) => e.id).join(', ')}.`,
    );
  if (opts.from) {
    const s = await stat(opts.from).catch(() => undefined);
    if (!s?.isDirectory())
      throw new QpError(
        'FILE_NOT_FOUND',
        `${opts.from} is not a folder. --from needs a folder laid out like ../shared/data.`,
      );
  }
  const m = new Mirror(opts.out, log);
  await mkdir(opts.out, { recursive: true });
  for (const set of IMAGE_SET_REGISTRY) await mirrorImageSet(m, set, opts);
  const local = opts.from ? await localModels(opts.from) : [];
  const missingModels: string[] = [];
  for (const id of ids) {
    const e = MODEL_REGISTRY.find((x) => x.id === id)!;
    if (!(await mirrorModel(m, e, opts, local))) missingModels.push(id);
  }
  await writeAtomic(path.join(opts.out, CATALOG_FILE), serializeCatalog(m.files));
  return { files: m.files, bytes: bytesOf(m.files), written: m.written, missingModels };
}

/** The command line of `npm run mirror`. */
export const MIRROR_CLI: CliSpec = {
  command: 'npm run mirror --',
  extra: {
    out: {
      flag: 'out',
      arg: 'DIR',
      type: PATH,
      help: 'the mirror folder (created; files already there that verify are kept)',
    },
    from: {
      flag: 'from',
      arg: 'DIR',
      type: PATH,
      help: 'take the files from a local copy laid out like ../shared/data (models/*.onnx, imagenet-sample/{wnid}.JPEG) instead of downloading',
    },
    models: {
      flag: 'models',
      arg: 'ID,ID|none',
      type: TEXT,
      list: true,
      help: 'registry models to include, or "none" (default: all)',
    },
  },
  required: ['out'],
  notes: `Writes a self-contained mirror of the registry's image sets and models to DIR, with
catalog.json listing every file's size and sha256. Serve DIR from any web server (with
CORS for another origin: docs/hosting.md) and list its URL in the site's site.json, or
give it to the CLI as QP_MIRROR.`,
};

export const MIRROR_USAGE = usage(MIRROR_CLI);

/** The command line of `npm run mirror`. Returns the exit code. */
export async function main(argv: string[], log: (line: string) => void = console.log): Promise<number> {
  let values: { out?: string; from?: string; models?: string[] };
  try {
    values = parseCli(MIRROR_CLI, argv).values;
  } catch (e) {
    return reportCliError(e, log);
  }
  const out = values.out!;
  const models = values.models?.length === 1 && values.models[0] === 'none' ? [] : values.models;
  const { fetchWithFiles } = await import('../lib/data/file-store.node.ts');
  try {
    const r = await writeMirror({
      out: path.resolve(out),
      from: values.from ? path.resolve(values.from) : undefined,
      models,
      env: { fetch: fetchWithFiles() },
      log,
    });
    log(
      `${path.resolve(out)}: ${r.files.length} files, ${MB(r.bytes)} (${r.written} written now), all verified; catalog in ${CATALOG_FILE}.`,
    );
    if (r.missingModels.length)
      log(`Not in the mirror (clients download these from their public source): ${r.missingModels.join(', ')}.`);
    return 0;
  } catch (e) {
    console.error(e instanceof Error ? e.message : String(e));
    return 1;
  }
}
