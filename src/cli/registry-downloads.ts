/**
 * The CLI's access to the registry's files: Node's fetch (file: URLs included, so a
 * QP_MIRROR entry may be a folder), the download cache folder (the platform's cache
 * directory, or QP_CACHE_DIR), and QP_MIRROR's mirrors before the public sources. The
 * bench wires `--model mobilenet-v2 --data imagenet-sample` through it.
 */
import { defaultCacheDir, fetchWithFiles, folderStore, mirrorBases } from '../lib/data/file-store.node.ts';
import { registryDownloads, type RegistryDownloads } from '../lib/models/registry-downloads.ts';

export function cliRegistryDownloads(
  env: Record<string, string | undefined> = process.env,
  cwd = process.cwd(),
): RegistryDownloads & { cacheDir: string } {
  const cacheDir = defaultCacheDir(env);
  const store = folderStore(cacheDir);
  return {
    ...registryDownloads({
      env: { fetch: fetchWithFiles() },
      imageStore: store,
      modelStore: store,
      mirrors: mirrorBases(env.QP_MIRROR, cwd),
    }),
    cacheDir,
  };
}
