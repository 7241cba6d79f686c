import { describe, expect, it } from 'vitest';
import { parseCommit } from '../version/conventional.ts';
import { logArgs, parseRecord } from './log.ts';

const rec = (message: string, sha = 'a'.repeat(40), parents = 'b'.repeat(40)) =>
  Buffer.from(`${sha}\x1f${parents}\x1f${message}\n`);

describe('parseRecord', () => {
  it('splits id, parents and message; trims trailing newlines and a leading separator newline', () => {
    const r = parseRecord(Buffer.concat([Buffer.from('\n'), rec('fix: a\n\nbody\n')]))!;
    expect(r).toEqual({ sha: 'a'.repeat(40), parents: ['b'.repeat(40)], message: 'fix: a\n\nbody' });
    expect(parseRecord(rec('x', 'c'.repeat(40), ''))!.parents).toEqual([]);
    expect(parseRecord(Buffer.from('garbage'))).toBeUndefined();
  });
  it("bodies 'needed' keeps exactly what analysis reads", () => {
    const cases = [
      'feat(api): a\n\nlong body that does not matter\nsecond line',
      'fix: b\n\nBREAKING CHANGE: config moved\nto a new place',
      'Revert "feat: c"\n\nThis reverts commit 0123456789abcdef0123456789abcdef01234567.',
      'chore: d\n\nbody\n\n[skip ci]',
      'feat: e\r\n\r\nbody\r\n',
      'docs: f',
    ];
    for (const m of cases) {
      const full = parseCommit(parseRecord(rec(m), 'all')!);
      const lean = parseCommit(parseRecord(rec(m), 'needed')!);
      expect(lean).toEqual(full);
    }
    expect(parseRecord(rec(cases[0]!), 'needed')!.message).toBe('feat(api): a');
  });
  it('builds the git log argv as an array', () => {
    expect(logArgs('v1.0.0..HEAD', ['agent'])).toEqual([
      '-c',
      'core.quotepath=off',
      '-c',
      'log.showSignature=false',
      '-c',
      'color.ui=false',
      'log',
      '-z',
      '--no-color',
      '--no-decorate',
      '--encoding=UTF-8',
      '--format=%H%x1f%P%x1f%B',
      'v1.0.0..HEAD',
      '--',
      'agent',
    ]);
  });
});
