/**
 * The config schema and everything derived from it: every field round-trips through the
 * URL codec and the bench CLI with random values from its declared domain, every entry
 * has a control, a flag and help text, validation rejects values outside each domain,
 * and configHash is sensitive to every single field but stable for equal configs and
 * for fields added later at their neutral value.
 */
import { sameFieldValue } from '../../src/lib/config/schema.ts';
import { describe, expect, it } from 'vitest';
import { xoroshiro128plus } from 'pure-rand/generator/xoroshiro128plus';
import { uniformInt } from 'pure-rand/distribution/uniformInt';
import {
  CONFIG_FIELDS,
  configField,
  getField,
  hashedForm,
  inDomain,
  withField,
  type ConfigField,
  type FieldKind,
} from '../../src/lib/config/schema.ts';
import { BACKEND_NAMES, NO_IMPORTED_SCHEME } from '../../src/lib/config/names.ts';
import type { ExperimentConfig } from '../../src/lib/config/types.ts';
import { PRESET_FIELDS, defaultConfig, validateConfig } from '../../src/lib/config/resolve.ts';
import { canonicalJson, configHash } from '../../src/lib/config/hash.ts';
import { BACKEND_PRESETS } from '../../src/lib/config/presets.ts';
import { parse, serialize } from '../../src/lib/config/url.ts';
import { formatFieldValue, parseBenchArgs, SCHEME_PENDING } from '../../src/cli/args.ts';
import { controlFor, selectOptions } from '../../src/lib/state/config-fields.ts';
import { QpError } from '../../src/lib/util/errors.ts';

function rng(seed: number) {
  const g = xoroshiro128plus(seed);
  const int = (lo: number, hi: number) => uniformInt(g, lo, hi);
  const pick = <T>(xs: readonly T[]): T => xs[int(0, xs.length - 1)];
  return { int, pick };
}
type Rng = ReturnType<typeof rng>;

/** A random value from a field's declared domain; ends of int ranges come up often. */
/** An imported scheme for configs whose observer is 'imported'. */
const IMPORTED = `sha256:${'0f'.repeat(32)}`;

function randomValue(r: Rng, t: FieldKind): unknown {
  switch (t.kind) {
    case 'bool':
      return r.int(0, 1) === 1;
    case 'int':
      return r.pick([t.min, t.max, r.int(t.min, t.max), r.int(t.min, Math.min(t.max, t.min + 300))]);
    case 'enum':
      return r.pick(t.values);
    case 'string': {
      // a field with a pattern (importedScheme): one of its values
      if (t.pattern)
        return r.pick(['none', `sha256:${Array.from({ length: 64 }, () => r.pick([...'0123456789abcdef'])).join('')}`]);
      const alphabet = 'abcXYZ019-_.:/?#&=%+ é';
      const n = r.pick([1, r.int(1, 30), t.maxLength]);
      return Array.from({ length: n }, () => r.pick([...alphabet])).join('');
    }
    case 'bitsMap': {
      const out: Record<string, number> = {};
      for (let i = r.int(0, 4); i > 0; i--)
        out[r.pick(['Conv_0', 'Conv_94', 'Gemm_104', '/features/1/conv/Conv', `n${r.int(0, 999)}`])] = r.int(
          t.min,
          t.max,
        );
      return out;
    }
  }
}

describe('config schema', () => {
  it('covers every ExperimentConfig field exactly once, with unique URL keys and CLI flags', () => {
    const c = defaultConfig();
    const names = [
      ...Object.keys(c).filter((k) => k !== 'v' && k !== 'placement'),
      ...Object.keys(c.placement).map((k) => `placement.${k}`),
    ].sort();
    expect(CONFIG_FIELDS.map((f) => f.name).sort()).toEqual(names);
    expect(new Set(CONFIG_FIELDS.map((f) => f.url)).size).toBe(CONFIG_FIELDS.length);
    expect(new Set(CONFIG_FIELDS.map((f) => f.cli.flag)).size).toBe(CONFIG_FIELDS.length);
  });

  it('gives every entry a UI control, a CLI flag, a label and a readable help paragraph', () => {
    const controls = new Map(CONFIG_FIELDS.map((f) => [f.name, controlFor(f)]));
    for (const f of CONFIG_FIELDS) {
      expect(f.cli.flag, f.name).toMatch(/^[a-z][a-z0-9-]*$/);
      expect(f.label.length, f.name).toBeGreaterThan(2);
      expect(f.help.length, f.name).toBeGreaterThanOrEqual(80);
      expect(f.help, f.name).toMatch(/[.)]$/);
      const ctl = controls.get(f.name);
      expect(ctl, f.name).toBeDefined();
      // the control can hold every value of the domain
      if (f.type.kind === 'bool') expect(ctl!.kind).toBe('checkbox');
      if (f.type.kind === 'int') expect(ctl).toMatchObject({ kind: 'number', min: f.type.min, max: f.type.max });
      if (f.type.kind === 'enum')
        expect(ctl!.kind === 'select' && ctl!.options.map((o) => o.value).sort()).toEqual([...f.type.values].sort());
      if (f.type.kind === 'string') expect(['model-panel', 'data-panel']).toContain(ctl!.kind);
      if (f.type.kind === 'bitsMap') expect(ctl!.kind).toBe('bits-map');
    }
    // the imported scheme is set by opening models, not by the data panel
    expect([controls.get('dataset')!.kind, controls.get('importedScheme')!.kind]).toEqual([
      'data-panel',
      'model-panel',
    ]);
  });

  it('offers the "imported" observer only while the config names an imported scheme', () => {
    const scheme = `sha256:${'ab'.repeat(32)}`;
    for (const name of ['wObserver', 'aObserver'] as const) {
      const f = configField(name)!;
      const ctl = controlFor(f);
      if (ctl.kind !== 'select') throw new Error(`${name} is not a select`);
      const values = (importedScheme: string) => selectOptions(ctl, f, { importedScheme }).map((o) => o.value);
      expect(values(scheme)).toContain('imported');
      expect(values(NO_IMPORTED_SCHEME)).not.toContain('imported');
      expect(values(NO_IMPORTED_SCHEME)).toEqual(values(scheme).filter((v) => v !== 'imported'));
    }
    // other selects keep every option
    const backend = configField('backend')!;
    const ctl = controlFor(backend);
    if (ctl.kind !== 'select') throw new Error('backend is not a select');
    expect(selectOptions(ctl, backend, { importedScheme: NO_IMPORTED_SCHEME })).toEqual(ctl.options);
  });

  it('marks exactly the fields every backend preset sets as preset fields', () => {
    const { name: _n, label: _l, description: _d, ...set } = BACKEND_PRESETS.tensorrt;
    expect([...PRESET_FIELDS].sort()).toEqual(Object.keys(set).sort());
    expect(PRESET_FIELDS).toEqual([
      'wBits',
      'wGranularity',
      'wSymmetric',
      'wNarrowRange',
      'wPowerOfTwo',
      'wObserver',
      'aBits',
      'aSymmetric',
      'aNarrowRange',
      'aPowerOfTwo',
      'aSign',
      'aObserver',
      'placement',
      'firstLast8bit',
    ]);
  });

  it('declares defaults inside their domains, and presets fill the rest', () => {
    for (const b of BACKEND_NAMES) {
      const c = defaultConfig(b);
      expect(() => validateConfig(c)).not.toThrow();
      for (const f of CONFIG_FIELDS) {
        expect(inDomain(f.type, getField(c, f)), `${b} ${f.name}`).toBe(true);
        if (f.default !== 'preset' && f.name !== 'backend') expect(getField(c, f)).toEqual(f.default);
      }
    }
  });

  it('round-trips every field through the URL with random values from its domain', () => {
    const r = rng(1);
    for (const f of CONFIG_FIELDS) {
      for (let i = 0; i < 60; i++) {
        const backend = r.pick(BACKEND_NAMES);
        const v = randomValue(r, f.type);
        let c = withField(defaultConfig(f.name === 'backend' ? 'tensorrt' : backend), f, v);
        // the observer 'imported' needs an imported scheme
        if (v === 'imported') c = { ...c, importedScheme: IMPORTED };
        const back = parse(`#${serialize(c)}`);
        expect(back.notices, `${f.name}=${String(v)}`).toEqual([]);
        expect(getField(back.config, f), `${f.name}=${String(v)}`).toEqual(v);
        expect(back.config).toEqual(c);
      }
    }
  });

  it('round-trips every field through the CLI with random values from its domain', () => {
    const r = rng(2);
    for (const f of CONFIG_FIELDS) {
      for (let i = 0; i < 60; i++) {
        const v = randomValue(r, f.type);
        if (f.cli.role === 'input') {
          // an input flag names a file or folder; the config gets its id once it is read
          const other = [
            ...(f.name === 'model' ? [] : ['--model', 'm']),
            ...(f.name === 'dataset' ? [] : ['--data', 'd']),
          ];
          const a = parseBenchArgs([`--${f.cli.flag}=${String(v)}`, ...other]);
          const given: Record<string, string | undefined> = {
            model: a.model,
            dataset: a.data,
            importedScheme: a.importedScheme,
          };
          expect(given[f.name]).toBe(v);
          if (f.name === 'importedScheme') expect(a.configs[0].importedScheme).toBe(SCHEME_PENDING);
          continue;
        }
        const backend = r.pick(BACKEND_NAMES);
        const argv = ['--model', 'm', '--data', 'd', `--${f.cli.flag}`, formatFieldValue(f, v)];
        if (f.name !== 'backend') argv.push('--backend', backend);
        if (v === 'imported') argv.push('--imported-scheme', IMPORTED);
        const a = parseBenchArgs(argv);
        expect(a.configs, argv.join(' ')).toHaveLength(1);
        expect(getField(a.configs[0] as ExperimentConfig, f), argv.join(' ')).toEqual(v);
      }
    }
  });

  it('multiplies a comma list of any field into one config per value', () => {
    for (const f of CONFIG_FIELDS.filter((x) => x.cli.role === 'value')) {
      if (f.cliSingle) continue; // its one value holds commas (checked in the round-trip test)
      const t: FieldKind = f.type;
      const values: unknown[] =
        f.type.kind === 'bool'
          ? [true, false]
          : f.type.kind === 'enum'
            ? f.type.values.slice(0, 3)
            : f.type.kind === 'int'
              ? [f.type.min, f.type.min + 1]
              : t.kind === 'string' && t.pattern
                ? ['none', IMPORTED]
                : [];
      const a = parseBenchArgs([
        '--model',
        'm',
        '--data',
        'd',
        `--${f.cli.flag}`,
        values.map((v) => formatFieldValue(f, v)).join(','),
        ...(values.includes('imported') ? ['--imported-scheme', IMPORTED] : []),
      ]);
      expect(
        a.configs.map((c) => getField(c as ExperimentConfig, f)),
        f.name,
      ).toEqual(values);
    }
  });

  it('rejects values outside each domain with a full sentence, in validation, URL and CLI', () => {
    const outside = (f: ConfigField): unknown[] => {
      switch (f.type.kind) {
        case 'bool':
          return ['yes', 1];
        case 'int':
          return [f.type.min - 1, f.type.max + 1, f.type.min + 0.5];
        case 'enum':
          return ['nonsense'];
        case 'string':
          return ['', 'x'.repeat(f.type.maxLength + 1)];
        case 'bitsMap':
          return [{ Conv_0: f.type.max + 1 }, { Conv_0: 4.5 }, { 'a=b': 8 }];
      }
    };
    for (const f of CONFIG_FIELDS) {
      for (const v of outside(f)) {
        let err: unknown;
        try {
          validateConfig(withField(defaultConfig(), f, v));
        } catch (e) {
          err = e;
        }
        expect(err, `${f.name}=${String(v)}`).toBeInstanceOf(QpError);
        expect((err as QpError).code).toBe('CONFIG_INVALID');
        expect((err as QpError).message).toMatch(/^[A-Z].*\.$/);
      }
      // the same values in a link: replaced by the default, with a notice naming the key
      if (f.name === 'backend') continue; // an unknown backend falls back to TensorRT with its own notice
      for (const v of f.type.kind === 'bool' ? ['yes', '2'] : outside(f)) {
        const p = parse(`#v=1&${f.url}=${encodeURIComponent(String(v))}`);
        expect(p.notices.join(' '), `${f.name}=${String(v)}`).toMatch(
          new RegExp(`sets ${f.url.replace('.', '\\.')} to`),
        );
        expect(p.config).toEqual(defaultConfig());
      }
    }
    expect(() => parseBenchArgs(['--model', 'm', '--data', 'd', '--w-symmetric', 'maybe'])).toThrow(
      /--w-symmetric must be 1 or 0/,
    );
    expect(() => parseBenchArgs(['--model', 'm', '--data', 'd', '--eval', 'all'])).toThrow(
      /--eval must be a whole number or "rest"/,
    );
    expect(() =>
      parseBenchArgs(['--model', 'm', '--data', 'd', '--fix', 'bias-correction', '--bias-correction', '0']),
    ).toThrow(/both given/);
  });

  it('keeps the first-release CLI shorthands', () => {
    const a = parseBenchArgs([
      '--model',
      'm',
      '--data',
      'd',
      '--fix',
      'bias-correction,bn-reestimate',
      '--no-fold-bn',
      '--eval',
      '64',
    ]);
    expect(a.configs).toHaveLength(1);
    expect(a.configs[0]).toMatchObject({ biasCorrection: true, bnReestimate: true, foldBn: false, eval: 64 });
  });
});

/** `c` changed so that field `f` is in use (AdaRound for its steps, equalization for its modes). */
function usedIn(c: ExperimentConfig, f: ConfigField): ExperimentConfig {
  const enablers: Partial<ExperimentConfig>[] = [{}, { ptq: 'adaround' }, { ptq: 'qdrop' }, { cle: true }];
  return enablers.map((e) => ({ ...c, ...e })).find((x) => f.usedWhen!(x)) ?? c;
}

describe('configHash', () => {
  it('keeps the hashes of the first release (stored results and links keep matching)', async () => {
    // Recorded before the schema existed.
    const golden: Record<string, string> = {
      academic: 'a2dabb4fb86fa78e',
      tensorrt: '5e7806b04f6d698d',
      snpe: '997d126e0f0406f5',
      fbgemm: '3b428e67ba499e1b',
      'ppl-cuda': '0785097aaa78279a',
      openvino: '91cf5bc5adea1c6a',
      vitis: '23a64469b527a2f5',
      'onnx-qnn': 'e7106fb62bd73c3f',
      tengine: '28ff82242f30c87e',
    };
    for (const b of BACKEND_NAMES) expect(await configHash(defaultConfig(b)), b).toBe(golden[b]);
    const link =
      'v=1&backend=openvino&model=sha256%3Aabababababababababababababababababababababababababababababababab&wBits=4&aObserver=kl&placement.concat=1&calib=32&eval=64&seed=7&biasCorrection=1';
    const p = parse(`#${link}`);
    expect(p.notices).toEqual([]);
    expect(serialize(p.config)).toBe(link);
    expect(await configHash(p.config)).toBe('0bd9727b679111d9');
  });

  it('changes when any single field changes, for random values of each field', async () => {
    const r = rng(3);
    for (const f of CONFIG_FIELDS) {
      for (let i = 0; i < 8; i++) {
        // a field another one can make irrelevant (ptqIters without AdaRound) is tested where it is used
        const plain = defaultConfig(r.pick(BACKEND_NAMES));
        const base = f.usedWhen ? usedIn(plain, f) : plain;
        expect(f.usedWhen?.(base) ?? true, `${f.name} is used in the base config`).toBe(true);
        let v = randomValue(r, f.type);
        for (let k = 0; k < 50 && sameFieldValue(v, getField(base, f)); k++) v = randomValue(r, f.type);
        if (sameFieldValue(v, getField(base, f))) continue;
        const changed = withField(base, f, v);
        expect(await configHash(changed), `${f.name}: ${String(getField(base, f))} → ${String(v)}`).not.toBe(
          await configHash(base),
        );
      }
    }
  });

  it('is equal for equal configs, whatever their key order or object identity', async () => {
    const r = rng(4);
    for (let i = 0; i < 40; i++) {
      let c = defaultConfig(r.pick(BACKEND_NAMES));
      for (const f of CONFIG_FIELDS) if (r.int(0, 2) === 0) c = withField(c, f, randomValue(r, f.type));
      const reversed = Object.fromEntries(Object.entries(structuredClone(c)).reverse()) as unknown as ExperimentConfig;
      reversed.placement = Object.fromEntries(Object.entries(c.placement).reverse()) as ExperimentConfig['placement'];
      expect(await configHash(reversed)).toBe(await configHash(c));
    }
  });

  it('leaves a later field out of the hashed form while it has its neutral value', () => {
    const later: ConfigField = {
      name: 'futureField',
      path: ['futureField' as keyof ExperimentConfig],
      type: { kind: 'bool' },
      default: false,
      url: 'futureField',
      cli: { flag: 'future-field', arg: '1|0', role: 'value' },
      label: 'Future field',
      group: 'model',
      help: 'A field added after the first release, for this test only.',
      since: 2,
      neutral: false,
    };
    const fields = [...CONFIG_FIELDS, later];
    const old = defaultConfig('openvino');
    const withNeutral = { ...old, futureField: false } as unknown as ExperimentConfig;
    const withOn = { ...old, futureField: true } as unknown as ExperimentConfig;
    expect(canonicalJson(hashedForm(withNeutral, fields))).toBe(canonicalJson(hashedForm(old, fields)));
    expect(canonicalJson(hashedForm(withOn, fields))).not.toBe(canonicalJson(hashedForm(old, fields)));
    // first-release fields are never left out, even at a value that looks neutral; later ones are, at their neutral value
    const firstRelease = Object.fromEntries(
      Object.entries(old).filter(([k]) => CONFIG_FIELDS.find((f) => f.path[0] === k)?.since !== 2),
    );
    expect(canonicalJson(hashedForm(old))).toBe(canonicalJson(firstRelease));
    expect(Object.keys(old).length - Object.keys(firstRelease).length).toBe(
      CONFIG_FIELDS.filter((f) => f.since > 1).length,
    );
    // a later field without a neutral value would silently change every old hash: the schema must not have one
    for (const f of CONFIG_FIELDS) if (f.since > 1) expect(f.neutral, f.name).toBeDefined();
  });
});
