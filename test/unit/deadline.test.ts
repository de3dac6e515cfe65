import { describe, expect, it } from 'vitest';
import { within } from '../../src/shared/deadline.js';

describe('within', () => {
  it("gives the promise's value when it settles in time, the fallback when it does not", async () => {
    expect(await within(Promise.resolve(7), 50, 'late')).toBe(7);
    expect(await within(new Promise((r) => setTimeout(r, 200, 7)), 20, 'late')).toBe('late');
  });

  it('passes on a rejection in time, and ignores one that comes after the fallback', async () => {
    await expect(within(Promise.reject(new Error('down')), 50, 'late')).rejects.toThrow('down');
    const slow = new Promise((_, reject) => setTimeout(reject, 40, new Error('later')));
    expect(await within(slow, 5, 'late')).toBe('late');
    await new Promise((r) => setTimeout(r, 60)); // an unhandled rejection would fail the run here
  });
});
