/**
 * The worker's exportRun: a result this worker did not just compute (e.g. a stored one from
 * an earlier visit) gets a full-sentence ARG_INVALID telling the user to run it again.
 */
import { describe, expect, it } from 'vitest';
import { createQuantApi } from '../../workers/api.ts';

describe('worker exportRun', () => {
  it('refuses a result that is not in memory, saying what to do', async () => {
    const api = createQuantApi({ storage: {} as never });
    const r = await api.exportRun('0123456789abcdef');
    expect(r).toMatchObject({ ok: false, error: { code: 'ARG_INVALID' } });
    if (!r.ok) expect(r.error.message).toMatch(/Run these settings again/);
  });
});
