/**
 * `npm run site -- [--mirror URL]… DIST`: adapts a built site to its mirrors without a
 * rebuild. It adds the mirrors to DIST/site.json, then derives the policy from site.json
 * as the build does: DIST/_headers and the `<meta>` policy of every page get the origin of
 * each plain-http mirror in connect-src, and the service worker's precache revision of each
 * rewritten page is updated, so browsers that cached the old page fetch the new one.
 * Must not: touch anything in DIST but site.json, _headers, the pages' policy and sw.js's
 * revisions.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { headersFile, withMetaPolicy } from '../../security-headers.ts';
import { checkMirrorUrl, mirrorConnectSources, parseSiteConfig, SITE_CONFIG_FILE } from '../lib/data/mirrors.ts';
import { QpError } from '../lib/util/errors.ts';
import { parseCli, reportCliError, TEXT, usage, type CliSpec } from './options.ts';

export interface SiteUpdate {
  mirrors: string[];
  /** connect-src sources added for plain-http mirrors */
  connect: string[];
  /** files rewritten, relative to DIST */
  changed: string[];
}

async function readText(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch {
    return undefined;
  }
}

/** Workbox's revision of a precached file: the md5 of its bytes, in hex. */
const revision = (text: string) => createHash('md5').update(text).digest('hex');

/** Updates DIST for its mirrors (plus `add`). Throws QpError naming what is wrong. */
export async function updateSite(dist: string, add: readonly string[] = []): Promise<SiteUpdate> {
  const index = path.join(dist, 'index.html');
  if ((await readText(index)) === undefined)
    throw new QpError('FILE_NOT_FOUND', `${dist} has no index.html: give the folder \`npm run build\` wrote (dist/).`);
  const changed: string[] = [];
  const siteFile = path.join(dist, SITE_CONFIG_FILE);
  const text = await readText(siteFile);
  const mirrors = text === undefined ? [] : parseSiteConfig(text, siteFile).mirrors;
  const added = add.map((m) => checkMirrorUrl(m, '--mirror')).filter((m) => !mirrors.includes(m));
  if (added.length) {
    mirrors.push(...added);
    await writeFile(siteFile, `${JSON.stringify({ mirrors }, null, 2)}\n`);
    changed.push(SITE_CONFIG_FILE);
  }
  const connect = mirrorConnectSources(mirrors);
  const write = async (rel: string, next: string) => {
    const file = path.join(dist, rel);
    if ((await readText(file)) === next) return;
    await writeFile(file, next);
    changed.push(rel);
  };
  await write('_headers', headersFile({ connect }));
  const pages = (await readdir(dist)).filter((f) => f.endsWith('.html'));
  let sw = await readText(path.join(dist, 'sw.js'));
  for (const page of pages) {
    const html = withMetaPolicy((await readText(path.join(dist, page)))!, { connect });
    await write(page, html);
    if (sw) {
      const entry = new RegExp(`(\\{url:"${page.replace('.', '\\.')}",revision:")[0-9a-f]+(")`);
      sw = sw.replace(entry, `$1${revision(html)}$2`);
    }
  }
  if (sw) await write('sw.js', sw);
  return { mirrors, connect, changed };
}

/** The command line of `npm run site`. */
export const SITE_CLI: CliSpec = {
  command: 'npm run site --',
  extra: {
    mirror: {
      flag: 'mirror',
      arg: 'URL',
      type: TEXT,
      multiple: true,
      help: 'add this mirror to DIST/site.json (repeat for several)',
    },
  },
  positionals: { arg: 'DIST', min: 1, max: 1 },
  notes: `Adds each mirror URL to DIST/site.json and rewrites the site's policy (DIST/_headers and
the <meta> policy of its pages) so connect-src admits every plain-http mirror listed in
site.json. Run it after editing DIST/site.json by hand, too. DIST is the folder
\`npm run build\` wrote (dist/).`,
};

export const SITE_USAGE = usage(SITE_CLI);

/** The command line of `npm run site`. Returns the exit code. */
export async function main(argv: string[], log: (line: string) => void = console.log): Promise<number> {
  let parsed;
  try {
    parsed = parseCli(SITE_CLI, argv);
  } catch (e) {
    return reportCliError(e, log);
  }
  try {
    const dist = path.resolve(parsed.positionals[0]);
    const r = await updateSite(dist, (parsed.values.mirror as string[] | undefined) ?? []);
    log(`Mirrors: ${r.mirrors.length ? r.mirrors.join(', ') : 'none (public sources only)'}.`);
    log(
      `connect-src adds: ${r.connect.length ? r.connect.join(' ') : 'nothing (https: and this site are allowed already)'}.`,
    );
    log(r.changed.length ? `Rewrote ${r.changed.join(', ')} in ${dist}.` : `${dist} was up to date.`);
    return 0;
  } catch (e) {
    console.error(e instanceof Error ? e.message : String(e));
    return 1;
  }
}
