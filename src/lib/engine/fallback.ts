/**
 * An engine that prefers one backend (WebGPU) and switches itself to another (wasm) on
 * the first failure, so a run continues instead of failing. Kept apart from the
 * browser engine (which loads onnxruntime-web) so the switching logic is tested in Node.
 */
import type { Engine, EngineKind, EngineSession, FloatTensor, SessionOptions } from './types.ts';

/**
 * A WebGPU engine that switches itself to wasm on the first WebGPU failure. Sessions
 * created before the switch re-create themselves on wasm when their run fails.
 */
export class FallbackEngine implements Engine {
  private current: Engine;
  reason: string | undefined;
  constructor(
    private readonly gpu: Engine,
    private readonly wasm: Engine,
    private readonly onFallback: (reason: string) => void,
  ) {
    this.current = gpu;
  }
  get kind(): EngineKind {
    return this.current.kind;
  }
  get description(): string {
    return this.reason ? `${this.wasm.description} (WebGPU failed, fell back to wasm)` : this.current.description;
  }
  private fallBack(e: unknown): void {
    if (this.reason) return;
    const msg = (e as Error)?.message ?? String(e);
    this.reason = `WebGPU failed, so the run continued on wasm: ${msg}`;
    this.current = this.wasm;
    this.onFallback(this.reason);
  }
  async createSession(model: Uint8Array, options?: SessionOptions): Promise<EngineSession> {
    if (this.current === this.gpu) {
      try {
        const s = await this.gpu.createSession(model, options);
        return this.wrap(s, model, options);
      } catch (e) {
        this.fallBack(e);
      }
    }
    return this.wasm.createSession(model, options);
  }
  private wrap(s: EngineSession, model: Uint8Array, options?: SessionOptions): EngineSession {
    let active = s;
    let onWasm = false;
    return {
      inputNames: s.inputNames,
      outputNames: s.outputNames,
      run: async (feeds: Record<string, FloatTensor>, fetches?: readonly string[]) => {
        if (!onWasm && this.reason) {
          // another session already fell back: follow it so one run never mixes engines
          await active.release().catch(() => undefined);
          active = await this.wasm.createSession(model, options);
          onWasm = true;
        }
        try {
          return await active.run(feeds, fetches);
        } catch (e) {
          if (onWasm) throw e;
          this.fallBack(e);
          await active.release().catch(() => undefined);
          active = await this.wasm.createSession(model, options);
          onWasm = true;
          return active.run(feeds, fetches);
        }
      },
      release: () => active.release(),
    };
  }
}
