/**
 * Node's side of verified downloads: the CLI's download cache (a folder of files named by
 * sha256, in the platform's cache directory unless QP_CACHE_DIR says otherwise), a fetch
 * that also reads file: URLs (so a mirror may be a folder), and the QP_MIRROR list as
 * base URLs.
 * Must not: be imported by browser code (node:fs), or leave a half-written file in the
 * cache (writes go to a temp file that is renamed into place).
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import os from 'node:os';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { ByteStore } from './downloads.ts';
import { parseMirrorList } from './mirrors.ts';

export const APP_DIR_NAME = 'quantization-playground';

/**
 * The folder the CLI keeps downloads in: QP_CACHE_DIR, else the platform's cache
 * directory (XDG_CACHE_HOME or ~/.cache on Linux, ~/Library/Caches on macOS,
 * %LOCALAPPDATA% on Windows) plus the app's name.
 */
export function defaultCacheDir(
  env: Record<string, string | undefined> = process.env,
  platform: NodeJS.Platform = process.platform,
  home: string = os.homedir(),
): string {
  if (env.QP_CACHE_DIR) return path.resolve(env.QP_CACHE_DIR);
  if (platform === 'win32') {
    const base = env.LOCALAPPDATA || path.win32.join(home, 'AppData', 'Local');
    return path.win32.join(base, APP_DIR_NAME, 'Cache');
  }
  if (platform === 'darwin') return path.posix.join(home, 'Library', 'Caches', APP_DIR_NAME);
  const xdg = env.XDG_CACHE_HOME && path.posix.isAbsolute(env.XDG_CACHE_HOME) ? env.XDG_CACHE_HOME : '';
  return path.posix.join(xdg || path.posix.join(home, '.cache'), APP_DIR_NAME);
}

/** A ByteStore in `dir`: one file per sha256 under `dir/sha256/`. */
export function folderStore(dir: string): ByteStore & { dir: string } {
  const root = path.join(dir, 'sha256');
  const file = (sha: string) => {
    if (!/^[0-9a-f]{64}$/.test(sha)) throw new Error(`not a sha256: ${sha}`);
    return path.join(root, sha);
  };
  return {
    dir,
    async get(sha) {
      try {
        return new Uint8Array(await readFile(file(sha)));
      } catch {
        return undefined;
      }
    },
    async put(sha, bytes) {
      await mkdir(root, { recursive: true });
      const tmp = `${file(sha)}.${randomBytes(6).toString('hex')}.tmp`;
      try {
        await writeFile(tmp, bytes);
        await rename(tmp, file(sha));
      } catch (e) {
        await unlink(tmp).catch(() => undefined);
        throw e;
      }
    },
  };
}

/**
 * `fetch` that also answers file: URLs from disk (200 with the bytes, 404 when missing),
 * so a folder mirror goes through the same verified download as a web one.
 */
export function fetchWithFiles(inner: typeof fetch = fetch): typeof fetch {
  return async (input, init) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    if (!url.startsWith('file:')) return inner(input, init);
    if (init?.signal?.aborted) throw init.signal.reason ?? new DOMException('Aborted', 'AbortError');
    try {
      const bytes = await readFile(fileURLToPath(url));
      return new Response(bytes, { status: 200, headers: { 'content-length': String(bytes.byteLength) } });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'EISDIR')
        return new Response('not found', { status: 404, statusText: 'Not Found' });
      throw new TypeError(`reading ${url} failed`, { cause: e });
    }
  };
}

/** QP_MIRROR as base URLs (folders become file: URLs, relative to `cwd`), each ending in "/". */
export function mirrorBases(value: string | undefined = process.env.QP_MIRROR, cwd = process.cwd()): string[] {
  return parseMirrorList(value).map((m) => {
    if (m.kind === 'url') return m.url;
    const href = pathToFileURL(path.resolve(cwd, m.path)).href;
    return href.endsWith('/') ? href : `${href}/`;
  });
}
