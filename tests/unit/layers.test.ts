/**
 * The layer checker itself: the real tree passes, imports against the order fail
 * (value, `import type` and inline `import()` types alike), cycles fail, and the
 * folder-level import graph — each folder under src/lib plus src/components, src/cli
 * and workers, type imports included — has no cycle. Svelte files are scanned here
 * too, because dependency-cruiser drops their type-only imports when it compiles them.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '../..');
const BIN = join(ROOT, 'node_modules/.bin/depcruise');

interface CruiseResult {
  modules: { source: string; dependencies: { resolved: string; dependencyTypes: string[] }[] }[];
  summary: { violations: { rule: { name: string }; from: string; to: string }[] };
}

/** Runs dependency-cruiser with the project config; JSON out (it exits non-zero on violations). */
function cruise(...paths: string[]): CruiseResult {
  try {
    const out = execFileSync(BIN, [...paths, '--config', '.dependency-cruiser.cjs', '--output-type', 'json'], {
      cwd: ROOT,
      encoding: 'utf8',
      maxBuffer: 64 << 20,
    });
    return JSON.parse(out) as CruiseResult;
  } catch (e) {
    const out = (e as { stdout?: string }).stdout;
    if (!out) throw e;
    return JSON.parse(out) as CruiseResult;
  }
}

/** Writes planted files under src/, runs `fn`, removes them again. */
function withPlanted<T>(files: Record<string, string>, fn: () => T): T {
  try {
    for (const [path, text] of Object.entries(files)) {
      const dir = join(ROOT, dirname(path));
      mkdirSync(dir, { recursive: true });
      writeFileSync(join(ROOT, path), text);
    }
    return fn();
  } finally {
    for (const path of Object.keys(files)) rmSync(join(ROOT, path), { force: true });
  }
}

function folderOf(path: string): string | undefined {
  const m = /^(src\/lib\/[^/]+|src\/components|src\/cli|workers)\//.exec(path);
  return m?.[1];
}

/** `import … from '…'` specifiers of the <script> blocks of a Svelte file. */
function svelteImports(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const out: string[] = [];
  for (const script of text.matchAll(/<script[^>]*>([\s\S]*?)<\/script>/g)) {
    for (const m of script[1].matchAll(
      /(?:import|export)\s[^'";]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g,
    ))
      out.push(m[1] ?? m[2]);
  }
  return out;
}

function svelteFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true, recursive: true })
    .filter((d) => d.isFile() && d.name.endsWith('.svelte'))
    .map((d) => relative(ROOT, join(d.parentPath, d.name)));
}

describe('layer checker (dependency-cruiser)', () => {
  const tree = cruise('src', 'workers');

  it('finds no violation in the tree', () => {
    expect(tree.summary.violations.map((v) => `${v.rule.name}: ${v.from} → ${v.to}`)).toEqual([]);
  });

  it('sees type-only imports and inline import() types, and fails them against the order', () => {
    const planted = {
      'src/lib/quant/planted-type.ts':
        "import type { RunInputs } from '../experiment/types.ts';\nexport type X = RunInputs;\n",
      'src/lib/onnx/planted-inline.ts': "export type Y = import('../analysis/types.ts').FixReport;\n",
      'src/lib/experiment/planted-value.ts': "export { analyzeQuantization } from '../analysis/analyze.ts';\n",
    };
    const r = withPlanted(planted, () => cruise(...Object.keys(planted)));
    const found = r.summary.violations.map((v) => `${v.rule.name} ${v.from}`);
    expect(found).toContain('layer:src/lib/quant src/lib/quant/planted-type.ts');
    expect(found).toContain('layer:src/lib/onnx src/lib/onnx/planted-inline.ts');
    expect(found).toContain('layer:src/lib/experiment src/lib/experiment/planted-value.ts');
  });

  it('fails a cycle inside one folder', () => {
    const planted = {
      'src/lib/util/planted-a.ts': "import type { B } from './planted-b.ts';\nexport type A = { b?: B };\n",
      'src/lib/util/planted-b.ts': "import type { A } from './planted-a.ts';\nexport type B = { a?: A };\n",
    };
    const r = withPlanted(planted, () => cruise('src/lib/util/planted-a.ts'));
    expect(r.summary.violations.some((v) => v.rule.name === 'no-circular')).toBe(true);
  });

  it('fails a component importing the core around state', () => {
    const planted = {
      'src/components/Planted.svelte':
        '<script lang="ts">\n  import { configLabel } from \'../lib/experiment/report.ts\';\n  configLabel;\n</script>\n',
    };
    const r = withPlanted(planted, () => cruise('src/components/Planted.svelte'));
    expect(r.summary.violations.some((v) => v.rule.name === 'components-through-state')).toBe(true);
  });

  it('components import only state and other components, type imports included', () => {
    const bad: string[] = [];
    for (const file of svelteFiles('src/components')) {
      for (const spec of svelteImports(file)) {
        if (!spec.startsWith('.')) continue;
        const target = normalize(join(dirname(file), spec));
        if (target.startsWith('src/lib/') && !target.startsWith('src/lib/state/')) bad.push(`${file} → ${target}`);
      }
    }
    expect(bad).toEqual([]);
  });

  it('the folder-level import graph has no cycle', () => {
    const edges = new Map<string, Set<string>>();
    const add = (from: string, to: string) => {
      const a = folderOf(from);
      const b = folderOf(to);
      if (!a || !b || a === b) return;
      if (!edges.has(a)) edges.set(a, new Set());
      edges.get(a)!.add(b);
    };
    for (const m of tree.modules) for (const d of m.dependencies) add(m.source, d.resolved);
    for (const file of svelteFiles('src/components')) {
      for (const spec of svelteImports(file)) if (spec.startsWith('.')) add(file, normalize(join(dirname(file), spec)));
    }
    expect(edges.size).toBeGreaterThan(10);
    // depth-first search for a back edge
    const state = new Map<string, 'open' | 'done'>();
    const cycles: string[] = [];
    const visit = (n: string, path: string[]) => {
      state.set(n, 'open');
      for (const m of edges.get(n) ?? []) {
        if (state.get(m) === 'open') cycles.push([...path, n, m].join(' → '));
        else if (!state.has(m)) visit(m, [...path, n]);
      }
      state.set(n, 'done');
    };
    for (const n of edges.keys()) if (!state.has(n)) visit(n, []);
    expect(cycles).toEqual([]);
  });
});
