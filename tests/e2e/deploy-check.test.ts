/**
 * "Check on integer kernels" in the BUILT app: a link written by `npm run bench -- --deploy`
 * opens to the same config; after Run, the check shows a simulated and a deployed top-1 in
 * [0, 100] %, an agreement and a first diverging layer (named, or 'none'), and they are the
 * numbers the CLI computed for the same config and images (both run onnxruntime-web's wasm
 * integer kernels); the first depthwise convolution recomputed by hand matches its kernel.
 * MobileNet-V2 on 8 calibration / 16 evaluation images keeps it short.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { main as bench } from '../../src/cli/bench.ts';
import type { DeployedField } from '../../src/cli/deploy.ts';
import { ARTIFACTS, SHARED, launch, runAndWait, skipReason as missing, type E2eSession } from './helpers.ts';

if (missing) console.warn(`[e2e] skipped: ${missing}.`);

const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

describe.skipIf(!!missing)('Check on integer kernels (e2e)', () => {
  let s: E2eSession;
  beforeAll(async () => {
    s = await launch();
  });
  afterAll(async () => {
    await s?.close();
  });

  it('shows simulated and deployed top-1, agreement and the first divergence, as the CLI computes them', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'qp-deploy-e2e-'));
    const json = path.join(dir, 'r.json');
    try {
      const code = await bench([
        ...['--model', path.join(SHARED, 'models/mobilenetv2-7-fp32.onnx')],
        ...['--data', path.join(SHARED, 'imagenet-sample')],
        ...['--calib', '8', '--eval', '16', '--engine', 'wasm', '--deploy', '--json', json],
      ]);
      expect(code).toBe(0);
      const [rec] = JSON.parse(readFileSync(json, 'utf8')) as {
        url: string;
        configHash: string;
        quant: { top1: number };
        deployed: DeployedField;
      }[];
      if ('error' in rec.deployed) throw new Error(rec.deployed.error);
      const cli = rec.deployed;

      const { page } = s;
      await page.goto(`${s.base}${rec.url}`);
      await page.waitForSelector('main[data-ready=true]');
      await page.locator('section[data-state=ready] [data-testid=model-current]').waitFor({ timeout: 60_000 });
      await page.locator('section[data-state=ready] [data-testid=data-current]').waitFor({ timeout: 60_000 });
      await runAndWait(page, 300_000);
      await page.locator('[data-testid=results][data-state=fresh]').waitFor();
      expect(await page.locator('[data-testid=results]').getAttribute('data-config-hash')).toBe(rec.configHash);

      await page.locator('[data-testid=check-integer]').click();
      await page.locator('[data-testid=deploy-progress]').waitFor();
      await page.locator('[data-testid=deploy-result]').waitFor({ timeout: 300_000 });
      await page.screenshot({ path: `${ARTIFACTS}/deploy-check.png`, fullPage: true });
      const t = (id: string) => page.locator(`[data-testid=${id}]`).innerText();
      const simulated = await t('deploy-simulated');
      const deployed = (await t('deploy-deployed')).split(' ')[0];
      const agreement = await t('deploy-agreement');
      const divergence = await t('deploy-divergence');
      for (const v of [simulated, deployed, agreement]) {
        expect(v).toMatch(/^\d+\.\d%$/);
        expect(Number.parseFloat(v)).toBeGreaterThanOrEqual(0);
        expect(Number.parseFloat(v)).toBeLessThanOrEqual(100);
      }
      expect(divergence === 'none' || /^.+: \d+ steps on [\d.]+% of its values — .+/.test(divergence)).toBe(true);
      expect(await t('deploy-speed')).toMatch(/× FP32 time/);
      // one output of the first depthwise convolution by hand: the kernel's byte on every output
      await page.locator('[data-testid=deploy-arithmetic] summary').click();
      expect(await page.locator('[data-testid=deploy-arithmetic] summary').innerText()).toMatch(
        /block 1 · depthwise 3×3 \(Conv_2\)/,
      );
      expect(await page.locator('[data-testid=deploy-arithmetic] tbody tr').count()).toBe(9);
      expect(await t('arith-match')).toMatch(/gives the kernel's byte for (\d+) \(100\.00%\)/);
      // the CLI's numbers for the same config and images
      expect(simulated).toBe(pct(rec.quant.top1));
      expect(deployed).toBe(pct(cli.top1));
      expect(agreement).toBe(pct(cli.agreement));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 600_000);
});
