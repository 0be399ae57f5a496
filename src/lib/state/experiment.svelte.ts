/**
 * The experiment being edited: a resolved ExperimentConfig, the hash string that encodes
 * it for the URL, which fields are custom overrides of the backend preset, and which
 * controls a teaching link hides. Rune class; it never touches `location` itself — the
 * app shell reads and writes the hash and calls loadHash.
 * Must not: talk to the worker (AppState does) or import components.
 */
import type { ExperimentConfig, PresetFields } from '../config/types.ts';
import { defaultConfig, overriddenFields, presetFields, validateConfig } from '../config/resolve.ts';
import { configHash } from '../config/hash.ts';
import type { BackendName } from '../quant/types.ts';
import { parse, serialize, type ParsedHash } from '../config/url.ts';
import { describeDomain, parseBitsMapText, withField, type ConfigField } from '../config/schema.ts';

export class ExperimentState {
  config = $state<ExperimentConfig>(defaultConfig());
  // replaced, never mutated in place, so the plain Set in $state is reactive enough
  // eslint-disable-next-line svelte/prefer-svelte-reactivity
  hidden = $state<Set<string>>(new Set());
  /** notices from reading the link (full sentences) */
  notices = $state<string[]>([]);
  /**
   * Field name → why the value typed there was refused. The refused value never enters
   * the config, so while any field has an error the form and the config disagree and Run
   * stays disabled (`invalid`); editing another field does not clear it — only fixing
   * that field, reverting it (revertField, which redraws it), a new backend or a new link.
   */
  fieldErrors = $state<Record<string, string>>({});
  /** bumped when controls must redraw from the config (a refused value is thrown away) */
  revision = $state(0);

  /** the first validation problem of the form, if any */
  get invalid(): string | undefined {
    const names = Object.keys(this.fieldErrors);
    return names.length ? this.fieldErrors[names[0]] : undefined;
  }

  overridden = $derived<(keyof PresetFields)[]>(overriddenFields(this.config));
  hash = $derived(serialize(this.config, this.hidden));
  /** configHash of the current config, resolved asynchronously */
  key = $state<string | undefined>(undefined);

  constructor(initialHash = '') {
    this.loadHash(initialHash);
    $effect.root(() => {
      $effect(() => {
        const c = $state.snapshot(this.config) as ExperimentConfig;
        let live = true;
        void configHash(c).then((h) => {
          if (live) this.key = h;
        });
        return () => {
          live = false;
        };
      });
    });
  }

  /** Replace the config from a hash (link opened, hash edited). */
  loadHash(hash: string): void {
    this.loadParsed(parse(hash));
  }

  /** Replace the config from an already parsed link (AppState.openLink). */
  loadParsed(p: ParsedHash): void {
    this.config = p.config;
    this.hidden = p.hidden;
    this.notices = p.notices;
    this.clearErrors();
  }

  private clearErrors(): void {
    if (Object.keys(this.fieldErrors).length) this.revision++;
    this.fieldErrors = {};
  }

  /** Throw away a refused value: the control shows the config's value again. */
  revertField(name: string): void {
    const { [name]: _gone, ...rest } = this.fieldErrors;
    void _gone;
    this.fieldErrors = rest;
    this.revision++;
  }

  private settle(name: string, next: ExperimentConfig): void {
    try {
      validateConfig(next);
    } catch (e) {
      this.fieldErrors = { ...this.fieldErrors, [name]: (e as Error).message };
      return;
    }
    this.config = next;
    if (name in this.fieldErrors) {
      const { [name]: _fixed, ...rest } = this.fieldErrors;
      void _fixed;
      this.fieldErrors = rest;
    }
  }

  isHidden(name: string): boolean {
    return this.hidden.has(name);
  }

  /** Switch backend: preset fields take the new preset's values, the rest are kept. */
  setBackend(b: BackendName): void {
    this.config = { ...this.config, backend: b, ...presetFields(b) };
    this.clearErrors();
  }

  /** Restore one preset field (or all) to the backend preset's value. */
  resetField(k?: keyof PresetFields): void {
    const p = presetFields(this.config.backend);
    this.config = k ? { ...this.config, [k]: p[k] } : { ...this.config, ...p };
    if (!k) this.clearErrors();
    else if (k !== 'placement' && k in this.fieldErrors) this.revertField(k);
  }

  /** Set a field; an invalid value is kept out of the config and reported. */
  set<K extends keyof ExperimentConfig>(k: K, v: ExperimentConfig[K]): void {
    this.settle(k, { ...this.config, [k]: v });
  }

  /** Set any schema field (placement rules included); an invalid value is kept out and reported. */
  setField(f: ConfigField, v: unknown): void {
    this.settle(f.name, withField(this.config, f, v));
  }

  /** Set a field from the text a person typed (per-layer bits: "Conv_0=8,Conv_94=8"); bad text is reported. */
  setFieldText(f: ConfigField, text: string): void {
    const v = f.type.kind === 'bitsMap' ? (text.trim() === '' ? {} : parseBitsMapText(text)) : text;
    if (v === undefined) {
      this.fieldErrors = {
        ...this.fieldErrors,
        [f.name]: `The ${f.label.toLowerCase()} must be ${describeDomain(f.type)}, got "${text.length > 40 ? `${text.slice(0, 40)}…` : text}".`,
      };
      return;
    }
    this.setField(f, v);
  }

  snapshot(): ExperimentConfig {
    return $state.snapshot(this.config) as ExperimentConfig;
  }
}
