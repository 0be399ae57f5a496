/**
 * The "Download deployable model" action: asks the worker for a result's export zip and
 * hands it to the browser as a file download. Returns what the user should see next to
 * the button (an error, or notes such as a refused QDQ model), never throws.
 */
import { quantClient } from '../clients/quant.ts';
import type { ErrorInfo } from '../util/errors.ts';

export interface DownloadOutcome {
  error?: ErrorInfo;
  notes: string[];
}

export async function downloadDeployable(configHash: string): Promise<DownloadOutcome> {
  const r = await quantClient().exportRun(configHash);
  if (!r.ok) return { error: r.error, notes: [] };
  const { fileName, bytes, notes, qdqError } = r.value;
  const url = URL.createObjectURL(new Blob([bytes as Uint8Array<ArrayBuffer>], { type: 'application/zip' }));
  const a = document.createElement('a');
  a.href = url;
  a.download = fileName;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
  return { error: qdqError, notes };
}
