import { createHash } from 'node:crypto';

/**
 * The commitment to a poll's tie-break seed: sha256 (hex) of the seed text as the tie-break uses it.
 * Published while the poll runs, the seed itself only at close, so anyone can re-run the count.
 */
export function tiebreakSeedHash(seed: string): string {
  return createHash('sha256').update(seed).digest('hex');
}
