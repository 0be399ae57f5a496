/**
 * The config codecs as properties (fast-check), for any valid config built from the schema's
 * declared domains (config/schema.ts CONFIG_FIELDS): the URL codec (url.ts) and the full
 * share link (link.ts) give back the same config and extras with no notice, and write the
 * same text again; the hash (hash.ts) is a function of the config's content alone (key
 * order, copies and a trip through a link leave it unchanged) and of nothing else.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BACKEND_NAMES, NO_IMPORTED_SCHEME } from '../../src/lib/config/names.ts';
import { canonicalJson, configHash } from '../../src/lib/config/hash.ts';
import { parseLink, serializeLink, type LinkExtras } from '../../src/lib/config/link.ts';
import { defaultConfig, validateConfig } from '../../src/lib/config/resolve.ts';
import { CONFIG_FIELDS, hashedForm, withField, type FieldKind } from '../../src/lib/config/schema.ts';
import type { ExperimentConfig } from '../../src/lib/config/types.ts';
import { parse, serialize } from '../../src/lib/config/url.ts';

const hex = (n: number) => fc.stringMatching(new RegExp(`^[0-9a-f]{${n}}$`));

/** Any value of a field's declared domain, text with the characters links must escape included. */
function valueOf(t: FieldKind): fc.Arbitrary<unknown> {
  switch (t.kind) {
    case 'bool':
      return fc.boolean();
    case 'int':
      return fc.oneof(fc.constantFrom(t.min, t.max), fc.integer({ min: t.min, max: t.max }));
    case 'enum':
      return fc.constantFrom(...t.values);
    case 'string':
      if (t.pattern)
        return fc.oneof(
          fc.constant(NO_IMPORTED_SCHEME),
          hex(64).map((h) => `sha256:${h}`),
        );
      return fc.oneof(
        fc.string({ minLength: 1, maxLength: t.maxLength, unit: 'grapheme' }),
        fc.string({ minLength: 1, maxLength: 30, unit: fc.constantFrom(...'aZ0 &=#%+?/:é_-.\u0000') }),
      );
    case 'bitsMap':
      return fc.dictionary(
        fc.string({ minLength: 1, maxLength: 20, unit: fc.constantFrom(...'Conv_/.-09abcXYZé#&%?') }),
        fc.integer({ min: t.min, max: t.max }),
        { maxKeys: 4 },
      );
  }
}

/** A valid config: a backend preset with any subset of fields set to any value of their domain. */
const configArb: fc.Arbitrary<ExperimentConfig> = fc
  .tuple(
    fc.constantFrom(...BACKEND_NAMES),
    ...CONFIG_FIELDS.filter((f) => f.name !== 'backend').map((f) => fc.option(valueOf(f.type), { nil: undefined })),
  )
  .map(([backend, ...values]) => {
    let c = defaultConfig(backend);
    CONFIG_FIELDS.filter((f) => f.name !== 'backend').forEach((f, i) => {
      if (values[i] !== undefined) c = withField(c, f, values[i]);
    });
    return c;
  })
  .filter((c) => {
    try {
      validateConfig(c);
      return true;
    } catch {
      return false;
    }
  });

const extrasArb: fc.Arbitrary<LinkExtras> = fc.record(
  {
    model: fc.record(
      {
        sha256: hex(64),
        source: fc.oneof(
          fc.record({ kind: fc.constant('registry' as const), id: fc.string({ minLength: 1, maxLength: 20 }) }),
          fc.record({
            kind: fc.constant('url' as const),
            url: fc.webUrl({ withQueryParameters: true, withFragments: true }),
          }),
          fc.record({ kind: fc.constant('dev' as const), name: fc.string({ minLength: 1, maxLength: 30 }) }),
          fc.record({
            kind: fc.constant('file' as const),
            name: fc.string({ minLength: 1, maxLength: 30, unit: 'grapheme' }),
          }),
        ),
      },
      { requiredKeys: ['sha256'] },
    ),
    data: fc.record(
      {
        fingerprint: fc.tuple(fc.integer({ min: 0, max: 999_999_999 }), hex(16)).map(([n, h]) => `${n}-${h}`),
        source: fc.oneof(
          fc.record({ kind: fc.constant('dev' as const), name: fc.string({ minLength: 1, maxLength: 30 }) }),
          fc.record({ kind: fc.constant('url' as const), url: fc.webUrl() }),
          fc.record({
            kind: fc.constant('folder' as const),
            name: fc.string({ minLength: 1, maxLength: 30, unit: 'grapheme' }),
          }),
        ),
      },
      { requiredKeys: ['fingerprint'] },
    ),
    engine: fc.constantFrom('webgpu' as const, 'wasm' as const),
    analyze: fc.integer({ min: 1, max: 64 }),
  },
  { requiredKeys: [] },
);

const hiddenArb = fc.subarray(CONFIG_FIELDS.map((f) => f.name));

describe('config codecs (property)', () => {
  it('URL: parse(serialize(c)) is c with no notice, and serializes to the same text', () => {
    fc.assert(
      fc.property(configArb, hiddenArb, (c, hidden) => {
        const hash = serialize(c, hidden);
        const back = parse(`#${hash}`);
        expect(back.notices).toEqual([]);
        expect(back.config).toEqual(c);
        expect([...back.hidden].sort()).toEqual([...new Set(hidden)].sort());
        expect(serialize(back.config, back.hidden)).toBe(hash);
      }),
      { numRuns: 300 },
    );
  });

  it('link: the config, hidden controls and every extra come back, with no notice', () => {
    fc.assert(
      fc.property(configArb, hiddenArb, extrasArb, (c, hidden, extras) => {
        const link = serializeLink(c, hidden, extras);
        const back = parseLink(`#${link}`);
        expect(back.notices).toEqual([]);
        expect(back.config).toEqual(c);
        expect(back.extras).toEqual(extras);
        expect(serializeLink(back.config, back.hidden, back.extras)).toBe(link);
      }),
      { numRuns: 300 },
    );
  });
});

describe('configHash (property)', () => {
  it('is the same for a copy with its keys in another order, and after a trip through a link', async () => {
    await fc.assert(
      fc.asyncProperty(configArb, fc.integer({ min: 0, max: 2 ** 31 - 1 }), async (c, seed) => {
        // shuffle the keys (top level and placement) deterministically by the seed
        const shuffle = (o: Record<string, unknown>) =>
          Object.fromEntries(
            Object.entries(o)
              .map((e, i) => [((i + 1) * (seed | 1)) % 1009, e] as const)
              .sort((a, b) => a[0] - b[0])
              .map(([, e]) => e),
          );
        const copy = { ...shuffle(c as unknown as Record<string, unknown>), placement: shuffle({ ...c.placement }) };
        const h = await configHash(c);
        expect(h).toMatch(/^[0-9a-f]{16}$/);
        expect(await configHash(copy as unknown as ExperimentConfig)).toBe(h);
        expect(await configHash(parse(serialize(c)).config)).toBe(h);
        expect(canonicalJson(hashedForm(copy as unknown as ExperimentConfig))).toBe(canonicalJson(hashedForm(c)));
      }),
      { numRuns: 150 },
    );
  });

  it('differs between configs whose hashed forms differ, and only then', async () => {
    await fc.assert(
      fc.asyncProperty(configArb, configArb, async (a, b) => {
        const same = canonicalJson(hashedForm(a)) === canonicalJson(hashedForm(b));
        expect((await configHash(a)) === (await configHash(b))).toBe(same);
      }),
      { numRuns: 150 },
    );
  });

  it('canonical JSON is JSON of the same value, whatever the order of keys at any level', () => {
    const reversed = (x: unknown): unknown =>
      Array.isArray(x)
        ? x.map(reversed)
        : x && typeof x === 'object'
          ? Object.fromEntries(
              Object.entries(x)
                .reverse()
                .map(([k, v]) => [k, reversed(v)]),
            )
          : x;
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const text = canonicalJson(v);
        expect(JSON.parse(text)).toEqual(JSON.parse(JSON.stringify(v)));
        expect(canonicalJson(reversed(v))).toBe(text);
      }),
      { numRuns: 300 },
    );
  });
});
