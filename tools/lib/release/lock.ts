/**
 * One `signet release` at a time per repository. The lock is the ref `refs/signet/release-lock`
 * (in the git dir, shared by every worktree, never pushed by a normal push) pointing at a blob
 * that names the holder: pid, host, start time and a nonce. It is created with
 * `git update-ref <ref> <blob> ""`, which git does atomically and only when the ref is absent,
 * and removed with a compare-and-swap on our own blob, so a run never removes another's lock.
 *
 * A lock whose holder is dead (same host, no such process) is taken over — again by
 * compare-and-swap on the dead holder's blob, so of two runs that find the same stale lock only
 * one wins — with a warning. A live holder, a holder on another host (its pid cannot be checked)
 * and a lock that names no holder are E_RELEASE_LOCKED (exit 4) at once: a second release
 * waiting for the first would find HEAD moved anyway.
 *
 * Hand-written rather than proper-lockfile: that library decides staleness by mtime (a dead
 * holder blocks for its whole stale period, a heartbeat timer runs meanwhile) and records no
 * holder, while the error must name the pid; git's own ref transaction already gives the
 * atomic create and the compare-and-swap.
 */
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { SignetError } from '../errors.ts';
import { GIT_ENV, git } from '../git/git.ts';
import { logger } from '../log.ts';

export const LOCK_REF = 'refs/signet/release-lock';

export interface LockHolder {
  pid: number;
  host: string;
  started: string;
  nonce: string;
}

export interface ReleaseLock {
  readonly holder: LockHolder;
  /** Removes the lock if it is still ours (idempotent). */
  release(): Promise<void>;
  /** The same, synchronously (exit and signal handlers). */
  releaseSync(): void;
}

function parseHolder(text: string): LockHolder | undefined {
  try {
    const h = JSON.parse(text) as Partial<LockHolder>;
    if (typeof h.pid === 'number' && Number.isInteger(h.pid) && h.pid > 0 && typeof h.host === 'string')
      return { pid: h.pid, host: h.host, started: String(h.started ?? ''), nonce: String(h.nonce ?? '') };
  } catch {}
  return undefined;
}

/** 'dead' only when this machine can tell for sure; anything else counts as alive. */
export function holderState(h: LockHolder, me: LockHolder): 'alive' | 'dead' | 'unknown' {
  if (h.host !== me.host) return 'unknown';
  if (h.pid === me.pid) return h.nonce === me.nonce ? 'alive' : 'dead'; // a pid reused (containers)
  try {
    process.kill(h.pid, 0);
    return 'alive';
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH' ? 'dead' : 'alive';
  }
}

function lockedError(root: string, h: LockHolder | undefined, state: string): SignetError {
  const who = h
    ? `pid ${h.pid}${h.host !== hostname() ? ` on ${h.host}` : ''}, since ${h.started}`
    : 'an unreadable holder';
  return new SignetError(
    'E_RELEASE_LOCKED',
    `another signet release holds ${root} (${who}${state === 'unknown' ? '; its process cannot be checked from here' : ''})`,
    { details: { lock: LOCK_REF, ...(h ? { pid: h.pid, host: h.host, started: h.started } : {}) } },
  );
}

export async function acquireReleaseLock(root: string): Promise<ReleaseLock> {
  const me: LockHolder = {
    pid: process.pid,
    host: hostname(),
    started: new Date().toISOString(),
    nonce: randomUUID(),
  };
  const oid = (
    await git(root, ['hash-object', '-w', '--stdin'], { input: JSON.stringify(me) })
  ).stdout.trim();
  const won = (): ReleaseLock => {
    let held = true;
    const deleteSync = () =>
      spawnSync('git', ['update-ref', '-d', LOCK_REF, oid], {
        cwd: root,
        stdio: 'ignore',
        env: { ...process.env, ...GIT_ENV },
      }).status === 0;
    const stillOursSync = () =>
      spawnSync('git', ['rev-parse', '-q', '--verify', LOCK_REF], {
        cwd: root,
        encoding: 'utf8',
        env: { ...process.env, ...GIT_ENV },
      }).stdout?.trim() === oid;
    const stillOurs = async () => {
      const cur = await git(root, ['rev-parse', '-q', '--verify', LOCK_REF], { allowFailure: true });
      return cur.exitCode === 0 && cur.stdout.trim() === oid;
    };
    const stuck = () =>
      logger.warn(
        `could not remove the release lock ${LOCK_REF}; once no signet release runs, remove it with \`git update-ref -d ${LOCK_REF}\``,
      );
    const lastTry = () => {
      held = !deleteSync() && stillOursSync();
      if (held) stuck();
    };
    return {
      holder: me,
      // Held until the ref is gone: a delete that failed (its git was interrupted, or git's own
      // ref lock was busy) is tried again while the ref still names this holder, and the signal
      // path's releaseSync still runs if this is cut short.
      async release() {
        for (let attempt = 0; held && attempt < 4; attempt++) {
          const r = await git(root, ['update-ref', '-d', LOCK_REF, oid], { allowFailure: true });
          if (r.exitCode === 0 || !(await stillOurs())) held = false;
          else await sleep(20 * (attempt + 1));
        }
        if (held) lastTry();
      },
      releaseSync() {
        if (held) lastTry();
      },
    };
  };
  // Bounded: each round either wins, fails with the holder, or saw the ref change under it.
  for (let round = 0; round < 50; round++) {
    const made = await git(root, ['update-ref', LOCK_REF, oid, ''], { allowFailure: true });
    if (made.exitCode === 0) return won();
    const cur = await git(root, ['rev-parse', '-q', '--verify', LOCK_REF], { allowFailure: true });
    if (cur.exitCode !== 0) {
      await sleep(10 + round * 5); // released meanwhile, or git's own ref lock was busy
      continue;
    }
    const held = cur.stdout.trim();
    const blob = await git(root, ['cat-file', 'blob', held], { allowFailure: true });
    const holder = blob.exitCode === 0 ? parseHolder(blob.stdout) : undefined;
    const state = holder ? holderState(holder, me) : 'unknown';
    if (!holder || state !== 'dead') throw lockedError(root, holder, state);
    const taken = await git(root, ['update-ref', LOCK_REF, oid, held], { allowFailure: true });
    if (taken.exitCode === 0) {
      logger.warn(
        `took over the release lock of pid ${holder.pid} (started ${holder.started}), which no longer runs; check \`git status\` and \`git log -1\` for what it left`,
      );
      return won();
    }
    await sleep(10 + round * 5);
  }
  throw lockedError(root, undefined, 'unknown');
}
