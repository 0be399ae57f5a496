/**
 * The layer order of the code base, enforced by `npm run check:deps` (part of `npm test`).
 * A folder may import only folders of a lower rank: nothing imports upwards and no two
 * folders of one rank import each other, so the folder-level import graph has no cycle.
 * Type-only imports and inline `import('…')` types count like any other import
 * (tsPreCompilationDeps), and so do dynamic `import()` calls.
 */

/** Lowest first. Folders on one line share a rank and must not import each other. */
const LAYERS = [
  ['src/lib/util', 'src/lib/help', 'src/lib/offline'],
  ['src/lib/config'],
  ['src/lib/protocol'],
  ['src/lib/quant'],
  ['src/lib/onnx'],
  ['src/lib/data'],
  ['src/lib/models'],
  ['src/lib/engine'],
  ['src/lib/experiment'],
  ['src/lib/analysis'],
  ['src/lib/corrections', 'src/lib/ptq', 'src/lib/export', 'src/lib/intro'],
  ['src/lib/imported'],
  ['src/lib/pipeline'],
  ['src/lib/search'],
  ['src/lessons'],
  ['src/lib/storage'],
  ['src/cli', 'workers'],
  ['src/lib/clients'],
  ['src/lib/state'],
  ['src/components'],
  ['src/App.svelte'],
  ['src/pwa.ts'],
  ['src/main.ts'],
];

const esc = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const re = (folders) => `^(${folders.map(esc).join('|')})(/|$)`;

const layerRules = LAYERS.flatMap((rank, i) => {
  const higher = LAYERS.slice(i + 1).flat();
  return rank.map((folder) => {
    const forbidden = [...higher, ...rank.filter((f) => f !== folder)];
    return {
      name: `layer:${folder}`,
      severity: 'error',
      comment: `${folder} may only import lower layers (see LAYERS in .dependency-cruiser.cjs); move the shared code down or plug it in from above.`,
      from: { path: re([folder]) },
      to: { path: re(forbidden) },
    };
  });
});

/** Every known layer; a new folder under src/lib must be given a rank. */
const KNOWN = LAYERS.flat();

module.exports = {
  forbidden: [
    ...layerRules,
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'Modules must not import each other in a cycle (type imports included).',
      from: {},
      to: { circular: true },
    },
    {
      name: 'components-through-state',
      severity: 'error',
      comment: 'Components reach the core only through src/lib/state (re-export what they need there).',
      from: { path: '^src/components/' },
      to: { path: '^src/lib/', pathNot: '^src/lib/state/' },
    },
    {
      name: 'unranked-folder',
      severity: 'error',
      comment: 'Every folder under src/lib needs a rank in LAYERS of .dependency-cruiser.cjs.',
      from: { path: '^src/lib/[^/]+/', pathNot: re(KNOWN) },
      to: {},
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      comment: 'An import that cannot be resolved is a typo or a missing file.',
      from: { path: '^(src|workers)/' },
      // Vite asset imports (`…?url`) and plugin virtual modules resolve at build time
      to: { couldNotResolve: true, pathNot: '\\?(url|raw)$|^virtual:' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|dist|tests|scripts)/' },
    tsPreCompilationDeps: true,
    detectJSDocImports: false,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      mainFields: ['module', 'main', 'types', 'typings'],
      extensions: ['.ts', '.js', '.svelte', '.json'],
    },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
