/**
 * Fault injection for e2e tests, installed only in a worker the page started with test
 * hooks on (its name starts with `quant-test:`, see src/lib/clients/quant.ts). The page
 * asks over a BroadcastChannel, so the typed QuantApi carries nothing test-only.
 * Must not: be reachable in a normal session.
 */
export const TEST_HOOKS_CHANNEL = 'qp-test-hooks';

export function installWorkerTestHooks(name: string = (globalThis as { name?: string }).name ?? ''): void {
  if (!name.startsWith('quant-test:') || typeof BroadcastChannel === 'undefined') return;
  const channel = new BroadcastChannel(TEST_HOOKS_CHANNEL);
  channel.onmessage = async (e: MessageEvent<{ kind?: string }>) => {
    if (e.data?.kind !== 'lose-webgpu-device') return;
    const ok = await (
      await import('../src/lib/engine/browser.ts')
    )
      .loseWebGpuDevice()
      .catch((err: Error) => `failed: ${err.message}`);
    channel.postMessage({ kind: 'webgpu-device-lost', ok });
  };
}
