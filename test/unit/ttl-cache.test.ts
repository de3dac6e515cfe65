import { describe, expect, it } from 'vitest';
import { createTtlCache } from '../../src/shared/ttl-cache.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('createTtlCache', () => {
  it('loads a key once for every caller asking at the same time, and again after its TTL', async () => {
    let loads = 0;
    const cache = createTtlCache<number, number | null>({ ttlMs: 40, load: async (k) => (loads++, await sleep(10), k === 0 ? null : k * 2) });
    expect(await Promise.all([cache.get(3), cache.get(3), cache.get(3)])).toEqual([6, 6, 6]);
    expect(loads).toBe(1);
    expect(await cache.get(0)).toBeNull();
    expect(await cache.get(0)).toBeNull();
    expect(loads).toBe(2);
    await sleep(60);
    await cache.get(3);
    expect(loads).toBe(3);
  });

  it('keeps a costly value longer with ttlFor', async () => {
    let loads = 0;
    const cache = createTtlCache<number, number>({ ttlMs: 1, ttlFor: (ms) => ms * 10, load: async (k) => (loads++, await sleep(20), k) });
    await cache.get(1);
    await sleep(50); // well past ttlMs, within 10 × the 20 ms load
    await cache.get(1);
    expect(loads).toBe(1);
  });

  it('serves the last value while reloads fail, within staleOnErrorMs only', async () => {
    let fail = false;
    const cache = createTtlCache<number, string>({
      ttlMs: 10,
      staleOnErrorMs: 60,
      load: async () => {
        if (fail) throw new Error('down');
        return 'v1';
      },
    });
    expect(await cache.get(1)).toBe('v1');
    fail = true;
    await sleep(30);
    expect(await cache.get(1)).toBe('v1');
    await sleep(60);
    await expect(cache.get(1)).rejects.toThrow();
  });

  it('forgets a failed load without staleOnErrorMs, so the next call tries again', async () => {
    let calls = 0;
    const cache = createTtlCache<number, number>({ ttlMs: 1000, load: async () => (++calls === 1 ? Promise.reject(new Error('x')) : 7) });
    await expect(cache.get(1)).rejects.toThrow();
    expect(await cache.get(1)).toBe(7);
  });
});
