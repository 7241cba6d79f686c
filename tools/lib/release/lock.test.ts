/**
 * The release lock's release against a real git whose ref transaction fails: git's own lock file
 * for the ref exists (as when a concurrent git holds it, or an interrupted `git update-ref -d`
 * left it). The lock stays held and is removed once the delete can go through; a ref that names
 * another holder is left alone.
 */
import { existsSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { TestRepo } from '../../../test/helpers/git-repo.ts';
import { acquireReleaseLock, LOCK_REF } from './lock.ts';

const gitLock = (repo: TestRepo) => join(repo.dir, '.git', 'refs', 'signet', 'release-lock.lock');

describe('release lock: release', () => {
  it('a delete refused by a busy ref is tried again until the ref is gone', async () => {
    const repo = TestRepo.create();
    const lock = await acquireReleaseLock(repo.dir);
    expect(repo.git('for-each-ref', '--format=%(refname)', LOCK_REF)).toBe(LOCK_REF);
    writeFileSync(gitLock(repo), '');
    // past git's own wait for a ref lock (core.filesRefLockTimeout, 100 ms)
    setTimeout(() => rmSync(gitLock(repo), { force: true }), 250);
    await lock.release();
    expect(repo.git('for-each-ref', LOCK_REF)).toBe('');
    expect(existsSync(gitLock(repo))).toBe(false);
  });

  it('a delete refused for good keeps the lock held, so that the signal path still removes it', async () => {
    const repo = TestRepo.create();
    const lock = await acquireReleaseLock(repo.dir);
    writeFileSync(gitLock(repo), '');
    await lock.release();
    expect(repo.git('for-each-ref', '--format=%(refname)', LOCK_REF)).toBe(LOCK_REF);
    rmSync(gitLock(repo));
    lock.releaseSync();
    expect(repo.git('for-each-ref', LOCK_REF)).toBe('');
  });

  it("a ref that names another holder is not removed (the delete is a compare-and-swap on this holder's object)", async () => {
    const repo = TestRepo.create();
    const lock = await acquireReleaseLock(repo.dir);
    const other = repo.git('hash-object', '-w', '--stdin');
    repo.git('update-ref', LOCK_REF, other || repo.git('rev-parse', 'HEAD'));
    const now = repo.git('rev-parse', LOCK_REF);
    await lock.release();
    expect(repo.git('rev-parse', LOCK_REF)).toBe(now);
  });
});
