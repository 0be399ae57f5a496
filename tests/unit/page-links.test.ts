/**
 * What the page's link says beyond the config: the open lesson and the section shown below
 * the controls (config/link.ts), the lessons' own links (a lesson never hides a panel its
 * steps use), and the labels that tell stored runs apart (state/run-label.ts).
 */
import { describe, expect, it } from 'vitest';
import { parseLink, serializeLink, LINK_VIEWS } from '../../src/lib/config/link.ts';
import { defaultConfig } from '../../src/lib/config/resolve.ts';
import { parse } from '../../src/lib/config/url.ts';
import { CONFIG_FIELDS } from '../../src/lib/config/schema.ts';
import { LESSONS } from '../../src/lessons/index.ts';
import { engineShort, runLabel } from '../../src/lib/state/run-label.ts';
import type { ExperimentResult } from '../../src/lib/protocol/results.ts';

describe('lesson and view in the link', () => {
  it('round-trips the open lesson and the section, after the run options and outside the config', () => {
    const config = { ...defaultConfig('tensorrt'), aBits: 6 };
    const hash = serializeLink(config, ['placement'], { engine: 'wasm', lesson: 'observers', view: 'history' });
    expect(hash.endsWith('&engine=wasm&lesson=observers&view=history')).toBe(true);
    const p = parseLink(hash);
    expect(p.notices).toEqual([]);
    expect(p.config).toEqual(config);
    expect([...p.hidden]).toEqual(['placement']);
    expect(p.extras).toEqual({ engine: 'wasm', lesson: 'observers', view: 'history' });
    // they change no number: the config part of the link is the same without them
    expect(hash.startsWith(serializeLink(config, ['placement'], {}))).toBe(true);
  });

  it('leaves the default section out and refuses garbled values with a notice', () => {
    expect(serializeLink(defaultConfig(), [], { view: LINK_VIEWS[0] })).toBe(serializeLink(defaultConfig(), [], {}));
    const p = parseLink('v=1&lesson=..%2Fetc&view=graphs');
    expect(p.extras).toEqual({});
    expect(p.notices.join(' ')).toMatch(/lesson "\.\.\/etc" that is not a lesson id/);
    expect(p.notices.join(' ')).toMatch(/section "graphs", which is not one of learn, analysis, graph, history/);
  });
});

/** Words in a lesson's steps that mean it uses a control (hidden with `<name>_hide`). */
const USES: Record<string, RegExp> = {
  history: /histor|compare/i,
  chart: /chart/i,
  engine: /engine|webgpu|wasm/i,
  dataSource: /images/i,
  modelSource: /\bmodel\b/i,
  placement: /placement|quantiz\w* (the )?(input|add|pool|concat)/i,
};
for (const f of CONFIG_FIELDS) USES[f.name] ??= new RegExp(f.label.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'i');

describe('lessons keep their tools', () => {
  it.each(LESSONS.map((l) => [l.id, l] as const))('%s hides no control its steps use', (_id, l) => {
    const hidden = [...parse(l.link).hidden];
    const text = [...l.steps, l.notice].join(' ');
    for (const name of hidden) {
      expect(USES[name], `no rule for hidden control ${name}`).toBeDefined();
      expect(text, `${l.id} hides ${name} but its steps use it`).not.toMatch(USES[name]);
    }
  });

  it('the rule catches a lesson that hides the history it asks to compare in', () => {
    const observers = LESSONS.find((l) => l.id === 'observers')!;
    expect(observers.steps.join(' ')).toMatch(USES.history);
  });
});

describe('run labels', () => {
  const run = (over: Partial<ExperimentResult['config']>, analysed: boolean, engine: string) =>
    ({
      config: { ...defaultConfig('tensorrt'), ...over },
      images: { calib: 32, eval: 64, skipped: 0 },
      engine,
      ...(analysed ? { analysis: { images: 16 } } : {}),
    }) as unknown as ExperimentResult;

  it('two runs that differ only in the seed, the analysis or the engine get different labels', () => {
    const a = run({ seed: 0 }, false, 'onnxruntime-web 1.30.0 wasm, 2 threads');
    const b = run({ seed: 1 }, false, 'onnxruntime-web 1.30.0 wasm, 2 threads');
    const c = run({ seed: 0 }, true, 'onnxruntime-web 1.30.0 wasm, 2 threads');
    const d = run({ seed: 0 }, false, 'onnxruntime-web 1.30.0 webgpu (NVIDIA)');
    const labels = [a, b, c, d].map(runLabel);
    expect(new Set(labels).size).toBe(4);
    expect(labels[0]).toMatch(/seed 0 · 32\/64 img · wasm$/);
    expect(labels[2]).toMatch(/analysed/);
  });

  it('names the engine briefly', () => {
    expect(engineShort('onnxruntime-web 1.30.0 wasm, 2 threads')).toBe('wasm');
    expect(engineShort('onnxruntime-web 1.30.0 WebGPU (swiftshader)')).toBe('WebGPU');
    expect(engineShort('onnxruntime-node, 4 threads')).toBe('node');
  });
});
