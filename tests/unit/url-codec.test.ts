/**
 * The shareable-URL codec: round trips of random valid configs, garbled hashes never
 * throw and fall back with a notice, `_hide` keys.
 */
import { describe, expect, it } from 'vitest';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import { parse, serialize, FIELDS } from '../../src/lib/config/url.ts';
import { defaultConfig, validateConfig } from '../../src/lib/config/resolve.ts';
import { CONFIG_FIELDS } from '../../src/lib/config/schema.ts';
import { BACKEND_NAMES, OBSERVER_NAMES } from '../../src/lib/quant/types.ts';
import type { ExperimentConfig } from '../../src/lib/config/types.ts';

function rng(seed: number) {
  const g = xoroshiro128plus(seed);
  const int = (lo: number, hi: number) => uniformInt(g, lo, hi);
  const pick = <T>(xs: readonly T[]): T => xs[int(0, xs.length - 1)];
  const bool = () => int(0, 1) === 1;
  return { int, pick, bool };
}

function randomConfig(seed: number): ExperimentConfig {
  const r = rng(seed);
  const c = defaultConfig(r.pick(BACKEND_NAMES));
  // About half the fields keep the preset value, so the "only differences" path is exercised.
  const maybe = <T>(v: T, cur: T) => (r.bool() ? v : cur);
  c.model = maybe(
    r.pick(['mobilenet-v2', 'resnet18', 'efficientnet-lite0', `sha256:${'ab'.repeat(32)}`, 'a b&c=d#%é']),
    c.model,
  );
  c.dataset = maybe(r.pick(['imagenet-sample', 'my-files', 'url:https://x.test/a?b=c']), c.dataset);
  c.wBits = maybe(r.int(2, 16), c.wBits);
  c.aBits = maybe(r.int(2, 16), c.aBits);
  c.wGranularity = maybe(r.pick(['per-tensor', 'per-channel'] as const), c.wGranularity);
  for (const k of [
    'wSymmetric',
    'wNarrowRange',
    'wPowerOfTwo',
    'aSymmetric',
    'aNarrowRange',
    'aPowerOfTwo',
    'firstLast8bit',
    'foldBn',
    'biasCorrection',
    'bnReestimate',
  ] as const) {
    c[k] = maybe(r.bool(), c[k]);
  }
  c.wObserver = maybe(r.pick(OBSERVER_NAMES), c.wObserver);
  c.aObserver = maybe(r.pick(OBSERVER_NAMES), c.aObserver);
  c.aSign = maybe(r.pick(['signed', 'unsigned', 'auto'] as const), c.aSign);
  c.placement = { ...c.placement };
  for (const k of ['conv', 'gemm', 'add', 'pool', 'concat', 'modelInput'] as const)
    c.placement[k] = maybe(r.bool(), c.placement[k]);
  c.calib = maybe(r.int(1, 5000), c.calib);
  c.eval = maybe(r.int(1, 50000), c.eval);
  c.seed = maybe(r.int(0, 0x7fffffff), c.seed);
  validateConfig(c);
  return c;
}

describe('url codec', () => {
  it('round-trips 2,000 random valid configs exactly, without notices', () => {
    for (let i = 0; i < 2000; i++) {
      const c = randomConfig(i);
      const hash = serialize(c);
      const back = parse(`#${hash}`);
      expect(back.notices, hash).toEqual([]);
      expect(back.config).toEqual(c);
      expect(serialize(back.config)).toBe(hash);
    }
  });

  it('writes only what differs from the preset', () => {
    const c = defaultConfig('openvino');
    expect(serialize(c)).toBe('v=1&backend=openvino');
    c.wBits = 4;
    c.calib = 32;
    expect(serialize(c)).toBe('v=1&backend=openvino&wBits=4&calib=32');
  });

  it('empty hash gives defaults without notices', () => {
    for (const h of ['', '#', '#/']) {
      const p = parse(h);
      expect(p.notices).toEqual([]);
      expect(p.config).toEqual(defaultConfig());
    }
  });

  it('never throws on 3,000 random and garbled hashes; falls back with a notice', () => {
    const r = rng(42);
    const alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789=&%#_-.~:/?+ é\u0000\uffff';
    const validHashes = Array.from({ length: 50 }, (_, i) => serialize(randomConfig(10_000 + i)));
    for (let i = 0; i < 3000; i++) {
      let h: string;
      const mode = i % 4;
      if (mode === 0) {
        h = Array.from({ length: r.int(1, 80) }, () => alphabet[r.int(0, alphabet.length - 1)]).join('');
      } else if (mode === 1) {
        // valid hash with a few characters replaced
        const base = r.pick(validHashes).split('');
        for (let j = 0; j < r.int(1, 5); j++) base[r.int(0, base.length - 1)] = alphabet[r.int(0, alphabet.length - 1)];
        h = base.join('');
      } else if (mode === 2) {
        // valid keys with wrong values
        const f = r.pick(FIELDS);
        h = `v=1&${f.name}=${r.pick(['', 'x', '-1', '99999999999', '%E0%A4%A', 'NaN', '1e3', 'true!'])}`;
      } else {
        h = r.pick([
          'v=0',
          'v=abc',
          'v=',
          'v=1&v=2',
          'v=1&backend=nope',
          'garbage',
          '%%%',
          'v=1&&&&',
          'v=1&calib=0',
          'v=1&seed=-5',
        ]);
      }
      let p: ReturnType<typeof parse> | undefined;
      expect(() => {
        p = parse(`#${h}`);
      }, h).not.toThrow();
      // whatever came in, what comes out is a valid config
      expect(() => validateConfig(p!.config), h).not.toThrow();
      // and if anything was not understood, the user is told
      const understood = p!.notices.length === 0;
      if (understood) expect(parse(`#${serialize(p!.config, p!.hidden)}`).config).toEqual(p!.config);
    }
  });

  it('tells the user about each fallback in a full sentence', () => {
    const p = parse('#v=1&backend=nope&wBits=99&foo=1&calib=abc');
    expect(p.config.backend).toBe('tensorrt');
    expect(p.config.wBits).toBe(defaultConfig('tensorrt').wBits);
    expect(p.notices).toHaveLength(4);
    for (const n of p.notices) expect(n).toMatch(/^[A-Z].*[.]$/);
    expect(p.notices.join(' ')).toMatch(/backend "nope"/);
    expect(p.notices.join(' ')).toMatch(/wBits to "99"/);
    expect(p.notices.join(' ')).toMatch(/unknown setting "foo"/);

    const old = parse('#v=0&wBits=4');
    expect(old.config).toEqual(defaultConfig());
    expect(old.notices[0]).toMatch(/version "0"/);
    const newer = parse('#v=7&backend=fbgemm&wBits=4');
    expect(newer.config.wBits).toBe(4);
    expect(newer.notices[0]).toMatch(/newer version/);
    const noVersion = parse('#wBits=5');
    expect(noVersion.config.wBits).toBe(5);
    expect(noVersion.notices[0]).toMatch(/no settings version/);
  });

  it('_hide keys hide controls and round-trip', () => {
    const c = defaultConfig('academic');
    c.wBits = 4;
    const hash = serialize(c, ['wObserver', 'engine', 'placement.add']);
    expect(hash).toContain('wObserver_hide=1');
    const p = parse(hash);
    expect(p.notices).toEqual([]);
    expect([...p.hidden].sort()).toEqual(['engine', 'placement.add', 'wObserver']);
    expect(p.config).toEqual(c);
    const bad = parse('#v=1&nonsense_hide=1&aBits_hide=0');
    expect(bad.hidden.size).toBe(0);
    expect(bad.notices[0]).toMatch(/hide "nonsense"/);
  });
});

describe('what a link reader is told', () => {
  const notices = (h: string) => parse(h).notices;

  it('strips "#" and "/" before the settings, and an empty or missing hash is the defaults without a notice', () => {
    expect(parse('#/v=1&calib=64')).toMatchObject({ notices: [], config: { calib: 64 } });
    for (const h of ['#   ', '', undefined as unknown as string])
      expect(parse(h)).toEqual({ config: defaultConfig(), notices: [], hidden: new Set() });
  });

  it('names a setting given twice, an unknown one (clipped at 40 characters) and a bad value with its default', () => {
    expect(parse('v=1&calib=64&calib=32')).toMatchObject({
      notices: ['The link sets "calib" more than once; the last value was used.'],
      config: { calib: 32 },
    });
    // empty pieces are skipped; "=5" is a setting with an empty name, "+" is a space
    expect(notices('v=1&&=5&backend=a+b')).toEqual([
      'Unknown backend "a b" in the link; the TensorRT preset was used instead.',
      'The link contains an unknown setting ""; it was ignored.',
    ]);
    const k40 = 'k'.repeat(40);
    expect(notices(`v=1&${k40}=1&${k40}x=1`)).toEqual([
      `The link contains an unknown setting "${k40}"; it was ignored.`,
      `The link contains an unknown setting "${k40}…"; it was ignored.`,
    ]);
    expect(notices('v=1&calib=abc')).toEqual([
      'The link sets calib to "abc", but it must be an integer from 1 to 1000000; the default (128) was used.',
    ]);
    // a switch is written 1 or 0 in a link, so that is what the reader is told
    expect(notices('v=1&wSymmetric=yes')[0]).toMatch(
      /^The link sets wSymmetric to "yes", but it must be 1 or 0; the default \(/,
    );
    // a field whose default writes as nothing says "none"
    expect(notices('v=1&layerBits=zz')[0]).toMatch(
      /^The link sets layerBits to "zz", .*; the default \(none\) was used\.$/,
    );
  });

  it('reads a newer version with a warning, and refuses a version it cannot read, even one equal in value', () => {
    expect(parse('v=2&calib=64')).toMatchObject({
      notices: [
        'The link was made by a newer version of the playground (settings version 2); the settings this version knows were read, check them before running.',
      ],
      config: { calib: 64 },
    });
    expect(parse('v=01&calib=64')).toEqual({
      config: defaultConfig(),
      notices: [
        'The link uses settings version "01", which this version of the playground cannot read; the default settings are shown instead.',
      ],
      hidden: new Set(),
    });
  });

  it('hides a control unless its _hide value is 0 or false, and writes hidden controls once, sorted', () => {
    expect([...parse('v=1&calib_hide=0&wBits_hide=false&seed_hide=&eval_hide=1').hidden].sort()).toEqual([
      'eval',
      'seed',
    ]);
    expect(serialize(defaultConfig(), ['wBits', 'calib', 'wBits'])).toBe(
      'v=1&backend=tensorrt&calib_hide=1&wBits_hide=1',
    );
  });

  it('reads a setting without "=" as one with an empty value, which its field refuses by name', () => {
    expect(parse('v=1&wBits&calib=64')).toMatchObject({
      notices: ['The link sets wBits to "", but it must be an integer from 2 to 16; the default (8) was used.'],
      config: { wBits: 8, calib: 64 },
    });
  });

  it('shows the defaults when every setting reads but together they are no experiment', () => {
    // the imported observer needs an imported model's scheme, which a link cannot carry alone
    const r = parse('v=1&backend=academic&wObserver=imported');
    expect(r.config).toEqual(defaultConfig());
    expect(r.notices).toEqual([
      expect.stringMatching(
        /^The settings in the link do not form a valid experiment \(The "imported" observer takes its ranges from an imported quantized model.*\); the defaults are shown instead\.$/,
      ),
    ]);
    expect(r.hidden).toEqual(new Set());
  });

  it('gives an absent meaning only to fields that depend on another setting (usedWhen)', () => {
    // url.ts relies on it: its `usedWhen?.(c) ?? true` never meets a field without usedWhen
    const withAbsent = FIELDS.filter((f) => f.absentMeans).map((f) => f.name);
    expect(withAbsent.length).toBeGreaterThan(0);
    for (const name of withAbsent) {
      const f = CONFIG_FIELDS.find((x) => x.url === name);
      expect(f?.usedWhen, `${name} has usedWhen`).toBeTypeOf('function');
    }
  });
});
