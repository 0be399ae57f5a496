/**
 * The full shareable link: the config (config/url.ts) plus what a run depends on beyond
 * it — which model file (sha256 and where it came from), which images (fingerprint and
 * where they came from), the engine choice and the analysis option. Pure (no DOM); the
 * CLI writes links with it and the app reads and writes location.hash with it.
 *
 * Keys (appended after the config's, only when known):
 *   msha   full sha256 of the model file
 *   msrc   registry:<id> | url:<address> | dev:<file name on the dev server> | file:<local file name>
 *   dfp    data fingerprint "<images>-<hash>" (data/fingerprint.ts)
 *   dsrc   registry:<image set> | dev:imagenet-sample | url:<manifest folder address> | folder:<local folder name>
 *   engine auto | webgpu | wasm (omitted for auto)
 *   analyze  number of analysis images when the analysis is on (omitted when off)
 *   lesson the guided lesson open on the page (its id); opening the link opens the lesson
 *   view   the page's section below the controls (learn | analysis | graph | history;
 *          omitted for learn)
 * The last two change no number: they say what the page shows, so a link copied while a
 * lesson is open gives a classmate the same question beside the same settings.
 * Values are checked here; a garbled one is dropped with a notice, never guessed.
 */
import { parse, serialize, type ParsedHash } from './url.ts';
import type { ExperimentConfig } from './types.ts';
import { describeDomain, parseFieldText, type FieldKind } from './schema.ts';
import { runOption, type AppEngine, type RunOptionField, type RunOptionName } from './run-options.ts';

export type ModelSourceRef =
  | { kind: 'registry'; id: string }
  | { kind: 'url'; url: string }
  | { kind: 'dev'; name: string }
  | { kind: 'file'; name: string };

export type DataSourceRef =
  | { kind: 'dev'; name: string }
  | { kind: 'url'; url: string }
  | { kind: 'folder'; name: string }
  /** a registry image set (data/image-sets.ts): the same files wherever the site finds them */
  | { kind: 'registry'; id: string };

export type LinkEngine = AppEngine;

export interface LinkExtras {
  model?: { sha256: string; source?: ModelSourceRef };
  data?: { fingerprint: string; source?: DataSourceRef };
  engine?: LinkEngine;
  /** analysis images when the analysis is on */
  analyze?: number;
  /** id of the open lesson (checked against the lessons by the app) */
  lesson?: string;
  /** the page's section below the controls */
  view?: LinkView;
}

/** The page's sections below the controls; the first is the default. */
export const LINK_VIEWS = ['learn', 'analysis', 'graph', 'history'] as const;
export type LinkView = (typeof LINK_VIEWS)[number];
const LESSON_ID = /^[a-z0-9]+(-[a-z0-9]+)*$/;

export interface ParsedLink extends ParsedHash {
  extras: LinkExtras;
}

/** The image count a data fingerprint (data/fingerprint.ts) states, or undefined when it is not one. */
export function fingerprintImages(fp: string): number | undefined {
  const m = /^(\d{1,9})-[0-9a-f]{16}$/.exec(fp);
  return m ? Number(m[1]) : undefined;
}

/** The run options a link carries, from the run-option table. */
const ENGINE = appPart('engine');
const ANALYSIS = appPart('analysisImages');

function appPart(name: RunOptionName): { link: string; type: FieldKind; default: string | number } {
  const app = (runOption(name) as RunOptionField).app!;
  return { link: app.link!, type: app.type, default: app.default };
}

const KEYS = ['msha', 'msrc', 'dfp', 'dsrc', ENGINE.link, ANALYSIS.link, 'lesson', 'view'];
const MAX_TEXT = 2000;

function sourceText(s: ModelSourceRef | DataSourceRef): string {
  switch (s.kind) {
    case 'registry':
      return `registry:${s.id}`;
    case 'url':
      return `url:${s.url}`;
    case 'dev':
      return `dev:${s.name}`;
    case 'file':
      return `file:${s.name}`;
    case 'folder':
      return `folder:${s.name}`;
  }
}

function splitSource(raw: string): [string, string] | undefined {
  const i = raw.indexOf(':');
  // Stryker disable next-line ConditionalExpression,EqualityOperator: a colon first or missing (or after one letter) gives no kind the callers know, which they refuse as well
  if (i < 1 || raw.length > MAX_TEXT) return undefined;
  const rest = raw.slice(i + 1);
  return rest ? [raw.slice(0, i), rest] : undefined;
}

function modelSource(raw: string): ModelSourceRef | undefined {
  const s = splitSource(raw);
  if (!s) return undefined;
  const [k, v] = s;
  if (k === 'registry') return { kind: 'registry', id: v };
  if (k === 'url') return { kind: 'url', url: v };
  if (k === 'dev') return { kind: 'dev', name: v };
  if (k === 'file') return { kind: 'file', name: v };
  return undefined;
}

function dataSource(raw: string): DataSourceRef | undefined {
  const s = splitSource(raw);
  if (!s) return undefined;
  const [k, v] = s;
  if (k === 'dev') return { kind: 'dev', name: v };
  if (k === 'url') return { kind: 'url', url: v };
  if (k === 'folder') return { kind: 'folder', name: v };
  if (k === 'registry') return { kind: 'registry', id: v };
  return undefined;
}

const enc = (s: string) => encodeURIComponent(s).replace(/%2F/g, '/').replace(/%3A/g, ':');

/** The link's hash (without '#'): the config's keys, then the extras in a fixed order. */
export function serializeLink(config: ExperimentConfig, hidden: Iterable<string>, x: LinkExtras): string {
  const parts = [serialize(config, hidden)];
  if (x.model) {
    parts.push(`msha=${x.model.sha256}`);
    if (x.model.source) parts.push(`msrc=${enc(sourceText(x.model.source))}`);
  }
  if (x.data) {
    parts.push(`dfp=${x.data.fingerprint}`);
    if (x.data.source) parts.push(`dsrc=${enc(sourceText(x.data.source))}`);
  }
  if (x.engine && x.engine !== ENGINE.default) parts.push(`${ENGINE.link}=${x.engine}`);
  if (x.analyze !== undefined) parts.push(`${ANALYSIS.link}=${x.analyze}`);
  if (x.lesson) parts.push(`lesson=${enc(x.lesson)}`);
  if (x.view && x.view !== LINK_VIEWS[0]) parts.push(`view=${x.view}`);
  return parts.join('&');
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    return s;
  }
}

/** Read a link; the config part as url.ts `parse` does, the extras checked one by one. */
export function parseLink(hash: string): ParsedLink {
  let h = typeof hash === 'string' ? hash : '';
  if (h.startsWith('#')) h = h.slice(1);
  const rest: string[] = [];
  const raw = new Map<string, string>();
  for (const piece of h.split('&')) {
    const eq = piece.indexOf('=');
    // Stryker disable next-line EqualityOperator: at eq = 0 the key is '' either way or '=…', neither one of KEYS
    const k = decode(eq < 0 ? piece : piece.slice(0, eq));
    // Stryker disable next-line EqualityOperator: a key of KEYS is not empty, so eq is never 0 here
    if (KEYS.includes(k)) raw.set(k, decode(eq < 0 ? '' : piece.slice(eq + 1)));
    // empty pieces (a stray '&') are no config: a link of extras alone reads as no config at all
    else if (piece) rest.push(piece);
  }
  const parsed = parse(rest.join('&'));
  const notices = [...parsed.notices];
  const extras: LinkExtras = {};
  const msha = raw.get('msha');
  if (msha !== undefined) {
    if (/^[0-9a-f]{64}$/.test(msha)) {
      const src = raw.has('msrc') ? modelSource(raw.get('msrc')!) : undefined;
      if (raw.has('msrc') && !src)
        notices.push(
          'The link says where its model came from in a form this version cannot read; the model is looked up by its sha256 only.',
        );
      extras.model = { sha256: msha, ...(src ? { source: src } : {}) };
    } else {
      notices.push(
        'The link names its model by a sha256 that is not 64 hexadecimal digits; it was ignored, so choose the model yourself.',
      );
    }
  }
  const dfp = raw.get('dfp');
  if (dfp !== undefined) {
    if (fingerprintImages(dfp) !== undefined) {
      const src = raw.has('dsrc') ? dataSource(raw.get('dsrc')!) : undefined;
      if (raw.has('dsrc') && !src)
        notices.push(
          'The link says where its images came from in a form this version cannot read; choose the images yourself.',
        );
      extras.data = { fingerprint: dfp, ...(src ? { source: src } : {}) };
    } else {
      notices.push(
        'The link names its images by a fingerprint this version cannot read; it was ignored, so choose the images yourself.',
      );
    }
  }
  const engine = raw.get(ENGINE.link);
  if (engine !== undefined) {
    const v = parseFieldText(ENGINE.type, engine);
    if (v !== undefined) extras.engine = v as LinkEngine;
    else
      notices.push(
        `The link asks for engine "${engine.slice(0, 20)}", which is not ${describeDomain(ENGINE.type).replace('one of ', '')}; Auto is used.`,
      );
  }
  const analyze = raw.get(ANALYSIS.link);
  if (analyze !== undefined) {
    const n = parseFieldText(ANALYSIS.type, analyze);
    if (n !== undefined) extras.analyze = n as number;
    else
      notices.push(
        `The link asks for an analysis of "${analyze.slice(0, 20)}" images, which is not ${describeDomain(ANALYSIS.type)}; the analysis is off.`,
      );
  }
  const lesson = raw.get('lesson');
  if (lesson !== undefined) {
    if (lesson.length <= 80 && LESSON_ID.test(lesson)) extras.lesson = lesson;
    else notices.push(`The link names a lesson "${lesson.slice(0, 40)}" that is not a lesson id; no lesson is opened.`);
  }
  const view = raw.get('view');
  if (view !== undefined) {
    if ((LINK_VIEWS as readonly string[]).includes(view)) extras.view = view as LinkView;
    else
      notices.push(
        `The link asks to show the section "${view.slice(0, 20)}", which is not one of ${LINK_VIEWS.join(', ')}; the first is shown.`,
      );
  }
  return { ...parsed, notices, extras };
}
