import { describe, expect, it } from 'vitest';
import { replay } from '../../../bench/replay.ts';

describe('replay of real-history shapes (bench/replay.ts)', () => {
  it('every planning run gives the released version', async () => {
    const r = await replay();
    expect(r.failures).toEqual([]);
    expect(r.expected).toBe(r.runs);
    expect(r.runs).toBeGreaterThanOrEqual(13);
  });
});
