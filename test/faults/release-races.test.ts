/**
 * `signet release --channel stable` under concurrency and signals, through the CLI as users run
 * it: two runs at once in one repository, Ctrl-C/SIGTERM sent to the process group at named
 * points (the test-only SIGNET_TEST_PAUSE_AT hook), SIGKILL after the commit, HEAD moved by
 * someone else mid-run. Every outcome is either fully released (one release commit whose
 * manifests say the tagged version, the tag on it, a clean tree) or fully rolled back — never half.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { TestRepo } from '../helpers/git-repo.ts';
import { tempDir } from '../helpers/tmp.ts';

const BIN = join(import.meta.dirname, '..', '..', 'tools', 'cli', 'bin.ts');
const LOCK_REF = 'refs/signet/release-lock';

interface Run {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** The CLI in its own process group (so the group can be signalled as a terminal does). */
function start(cwd: string, env: Record<string, string> = {}): { child: ChildProcess; done: Promise<Run> } {
  const child = spawn(process.execPath, [BIN, 'release', '--channel', 'stable', '--no-color'], {
    cwd,
    env: { ...process.env, NO_COLOR: '1', ...env },
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => {
    stdout += d;
  });
  child.stderr!.on('data', (d) => {
    stderr += d;
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const done = new Promise<Run>((resolve) =>
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    }),
  );
  return { child, done };
}

const release = (cwd: string, env?: Record<string, string>) => start(cwd, env).done;

async function waitFor(file: string): Promise<void> {
  for (let i = 0; i < 1500 && !existsSync(file); i++) await sleep(20);
  if (!existsSync(file)) throw new Error(`the run never reached ${file}`);
}

/** A run paused at `step`; `resume()` removes the marker so it goes on. */
async function paused(repo: TestRepo, step: string) {
  const marker = join(tempDir('signet-pause-'), 'paused');
  const run = start(repo.dir, { SIGNET_TEST_PAUSE_AT: step, SIGNET_TEST_PAUSE_FILE: marker });
  await waitFor(marker);
  return { ...run, resume: () => rmSync(marker) };
}

function product(): { repo: TestRepo; base: string } {
  const repo = TestRepo.create({
    files: { 'package.json': '{\n  "name": "agent",\n  "version": "0.4.0"\n}\n' },
  });
  repo.tag('v0.4.0', { annotated: true });
  const base = repo.commit('feat: remote shell', { 'shell.txt': 'x' });
  return { repo, base };
}

const manifestVersion = (repo: TestRepo, rev: string) =>
  (JSON.parse(repo.git('show', `${rev}:package.json`)) as { version: string }).version;

/** Fully released: one release commit on the base, manifests 0.5.0, tag on it, clean, unlocked. */
function expectReleased(repo: TestRepo, base: string): void {
  expect(repo.git('rev-list', `${base}..HEAD`).split('\n')).toHaveLength(1);
  expect(repo.git('log', '-1', '--format=%s')).toBe('chore(release): v0.5.0 [skip ci]');
  expect(repo.rev('HEAD^')).toBe(base);
  expect(manifestVersion(repo, 'HEAD')).toBe('0.5.0');
  expect(repo.rev('v0.5.0')).toBe(repo.head());
  expect(repo.git('cat-file', '-t', 'v0.5.0')).toBe('tag');
  expect(repo.status()).toBe('');
  expect(repo.git('for-each-ref', LOCK_REF)).toBe('');
}

/** Fully rolled back: HEAD on the base, no tag, no changed or new file, unlocked. */
function expectRolledBack(repo: TestRepo, base: string): void {
  expect(repo.head()).toBe(base);
  expect(repo.tags()).toEqual(['v0.4.0']);
  expect(repo.status()).toBe('');
  expect(readFileSync(join(repo.dir, 'package.json'), 'utf8')).toContain('"0.4.0"');
  expect(repo.git('for-each-ref', LOCK_REF)).toBe('');
}

const lockedCode = (r: Run) => /\[(E_[A-Z_]+)\]/.exec(r.stderr)?.[1];

describe('two concurrent stable releases in one repository', () => {
  it('20 trials: exactly one release commit with the tagged version, tag on it, clean tree; the other run is E_RELEASE_LOCKED', async () => {
    let overlapped = 0;
    for (let trial = 0; trial < 20; trial++) {
      const { repo, base } = product();
      const [a, b] = await Promise.all([release(repo.dir), release(repo.dir)]);
      const ok = [a, b].filter((r) => r.code === 0 && /tagged v0\.5\.0/.test(r.stdout));
      expect(ok, `trial ${trial}: ${a.stderr} | ${b.stderr}`).toHaveLength(1);
      const other = ok[0] === a ? b : a;
      if (other.code === 4) {
        expect(lockedCode(other)).toBe('E_RELEASE_LOCKED');
        expect(other.stderr).toMatch(/held|holds/);
        overlapped++;
      } else {
        // It started after the winner had finished: nothing left to release.
        expect(other.code, other.stderr).toBe(0);
        expect(other.stdout).toContain('release commit at HEAD');
      }
      expectReleased(repo, base);
    }
    console.log(`concurrent trials: ${overlapped} of 20 overlapped (the other run E_RELEASE_LOCKED)`);
    expect(overlapped).toBeGreaterThan(0);
  }, 300_000);

  it('a live holder: E_RELEASE_LOCKED (exit 4) naming its pid; after a SIGKILL the lock is taken over with a message', async () => {
    const { repo, base } = product();
    const holder = await paused(repo, 'after-lock');
    const second = await release(repo.dir);
    expect(second.code).toBe(4);
    expect(lockedCode(second)).toBe('E_RELEASE_LOCKED');
    expect(second.stderr).toContain(`pid ${holder.child.pid}`);
    expect(repo.head()).toBe(base);
    process.kill(-holder.child.pid!, 'SIGKILL');
    await holder.done;
    expect(repo.git('for-each-ref', '--format=%(refname)', LOCK_REF)).toBe(LOCK_REF); // left behind
    const third = await release(repo.dir);
    expect(third.code, third.stderr).toBe(0);
    expect(third.stderr).toContain(`took over the release lock of pid ${holder.child.pid}`);
    expectReleased(repo, base);
  }, 60_000);
});

describe('HEAD moved by someone else during a release', () => {
  it('before the commit: E_RELEASE_HEAD_MOVED; the other commit stays; the run rolls back only its own files', async () => {
    const { repo, base } = product();
    const run = await paused(repo, 'after-write');
    // Someone commits another file meanwhile (the run's written files stay unstaged).
    const theirs = repo.commit('fix: theirs', { 'theirs.txt': 't' });
    run.resume();
    const r = await run.done;
    expect(r.code).toBe(1);
    expect(lockedCode(r)).toBe('E_RELEASE_HEAD_MOVED');
    expect(repo.head()).toBe(theirs);
    expect(repo.rev('HEAD^')).toBe(base);
    expect(repo.tags()).toEqual(['v0.4.0']);
    expect(repo.git('for-each-ref', LOCK_REF)).toBe('');
  }, 60_000);

  it('after the commit, someone commits on top, then SIGTERM: their commit and the release commit under it are kept, nothing is reset', async () => {
    const { repo, base } = product();
    const run = await paused(repo, 'after-commit');
    const release = repo.head();
    expect(release).not.toBe(base);
    const theirs = repo.commit('fix: on top', { 'top.txt': 't' });
    process.kill(-run.child.pid!, 'SIGTERM');
    const r = await run.done;
    expect(r.signal).toBe('SIGTERM');
    expect(repo.head()).toBe(theirs);
    expect(repo.rev('HEAD^')).toBe(release);
    expect(repo.status()).toBe('');
    expect(repo.tags()).toEqual(['v0.4.0']);
    expect(r.stderr).toContain('left as found');
  }, 60_000);
});

describe('Ctrl-C and SIGTERM during a stable release', () => {
  for (const step of ['after-lock', 'after-write', 'after-add', 'after-commit', 'after-tag']) {
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      it(`${signal} to the process group ${step}: fully rolled back; a re-run releases fully`, async () => {
        const { repo, base } = product();
        const run = await paused(repo, step);
        process.kill(-run.child.pid!, signal);
        const r = await run.done;
        expect(r.signal, r.stderr).toBe(signal);
        expectRolledBack(repo, base);
        const again = await release(repo.dir);
        expect(again.code, again.stderr).toBe(0);
        expectReleased(repo, base);
      }, 60_000);
    }
  }

  it('12 trials of SIGINT at spread-out moments: never half-made; a re-run always ends fully released', async () => {
    const outcomes = { rolledBack: 0, released: 0 };
    // Moments spread over the second half of a measured run (the first is mostly start-up).
    const t0 = Date.now();
    await release(product().repo.dir);
    const ms = Date.now() - t0;
    for (let trial = 0; trial < 12; trial++) {
      const { repo, base } = product();
      const run = start(repo.dir);
      await sleep(Math.round(ms * (0.45 + (0.55 * trial) / 11)));
      try {
        process.kill(-run.child.pid!, 'SIGINT');
      } catch {} // already finished
      const r = await run.done;
      if (repo.head() === base) {
        expectRolledBack(repo, base);
        outcomes.rolledBack++;
      } else {
        // Finished before the signal (or the signal came after the tag, once the run was done).
        expect(r.code === 0 || r.signal === 'SIGINT', r.stderr).toBe(true);
        expectReleased(repo, base);
        outcomes.released++;
      }
      const again = await release(repo.dir);
      expect(again.code, again.stderr).toBe(0);
      expectReleased(repo, base);
    }
    expect(outcomes.rolledBack + outcomes.released).toBe(12);
    console.log(`SIGINT trials: ${JSON.stringify(outcomes)}`);
  }, 300_000);
});

describe('a killed run left the release commit untagged', () => {
  it('SIGKILL after the commit: the re-run takes over the lock and tags the commit (not "nothing to release")', async () => {
    const { repo, base } = product();
    const run = await paused(repo, 'after-commit');
    process.kill(-run.child.pid!, 'SIGKILL');
    await run.done;
    expect(repo.tags()).toEqual(['v0.4.0']);
    const again = await release(repo.dir);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toContain('finished an interrupted release');
    expectReleased(repo, base);
    expect(repo.git('tag', '-l', '--format=%(contents)', 'v0.5.0')).toContain('remote shell');
  }, 60_000);

  it('an untagged release commit is tagged on a re-run; one whose manifests do not say the version is refused', async () => {
    const { repo, base } = product();
    expect((await release(repo.dir)).code).toBe(0);
    repo.git('tag', '-d', 'v0.5.0');
    const again = await release(repo.dir);
    expect(again.code, again.stderr).toBe(0);
    expectReleased(repo, base);

    const bad = product();
    bad.repo.commit('chore(release): v0.5.0 [skip ci]', { 'CHANGELOG.md': '# Changelog\n' });
    const refused = await release(bad.repo.dir);
    expect(refused.code).toBe(2);
    expect(lockedCode(refused)).toBe('E_MANIFEST_DISAGREE');
    expect(bad.repo.tags()).toEqual(['v0.4.0']);
  }, 60_000);
});
