/**
 * The stable transaction: files → index → commit → tag (last) → push. Every step is recorded in a
 * journal before it is made and undone on a failure or a signal — but only where the repository
 * still holds what this run set: refs by compare-and-swap (`git update-ref <ref> <old> <ours>`),
 * index entries and files only when they still hold this run's content and HEAD is back on the
 * planned base. A rollback never removes another run's commit or tag, nor writes old contents
 * over someone else's work. HEAD must still be the planned base (same branch, same commit) before
 * the commit, and the release commit before the tag: E_RELEASE_HEAD_MOVED otherwise.
 *
 * The commit is made with write-tree / commit-tree / update-ref (compare-and-swap on the branch)
 * and the tag with mktag / update-ref (create only if absent), so that the exact values this run
 * set are known before they land.
 */
import { existsSync, mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { SignetConfig } from '../config/schema.ts';
import { isSignetError, SignetError } from '../errors.ts';
import { git, gitOut } from '../git/git.ts';
import { logger } from '../log.ts';
import type { FileChange } from './files.ts';
import { type Guard, Interrupted } from './interrupt.ts';

export function commitMessage(template: string, tag: string, version: string): string {
  return template.replaceAll('{tag}', tag).replaceAll('{version}', version);
}

export function identityEnv(cfg: SignetConfig['git']): Record<string, string> {
  return {
    GIT_AUTHOR_NAME: cfg.authorName,
    GIT_AUTHOR_EMAIL: cfg.authorEmail,
    GIT_COMMITTER_NAME: cfg.authorName,
    GIT_COMMITTER_EMAIL: cfg.authorEmail,
  };
}

export interface HeadState {
  sha: string;
  /** The checked-out branch (`refs/heads/main`), or `HEAD` when detached. */
  ref: string;
}

export async function headState(root: string): Promise<HeadState> {
  const [sha = '', ref = 'HEAD'] = (
    await gitOut(root, ['rev-parse', 'HEAD', '--symbolic-full-name', 'HEAD'])
  ).split('\n');
  return { sha, ref };
}

async function expectHead(root: string, want: HeadState, when: string): Promise<void> {
  const now = await headState(root);
  if (now.sha === want.sha && now.ref === want.ref) return;
  throw new SignetError(
    'E_RELEASE_HEAD_MOVED',
    `HEAD moved ${when}: expected ${want.ref} at ${want.sha.slice(0, 12)}, found ${now.ref} at ${now.sha.slice(0, 12)}`,
    { details: { expected: want.sha, found: now.sha, ref: now.ref } },
  );
}

/** `git update-ref <ref> <new> <old>`; on a detached HEAD the HEAD itself. */
function casArgs(ref: string, next: string, old: string, message: string): string[] {
  return ['update-ref', '-m', message, ...(ref === 'HEAD' ? ['--no-deref'] : []), ref, next, old];
}

/** Index entries (path → blob id) of the given paths. */
async function indexEntries(root: string, paths: readonly string[]): Promise<Map<string, string>> {
  const out = await gitOut(root, ['ls-files', '-s', '-z', '--', ...paths]);
  const map = new Map<string, string>();
  for (const rec of out.split('\0')) {
    const m = /^\d+ ([0-9a-f]+) \d\t(.*)$/s.exec(rec);
    if (m) map.set(m[2]!, m[1]!);
  }
  return map;
}

export interface StableTransaction {
  root: string;
  config: Pick<SignetConfig, 'changelog' | 'git'>;
  tag: string;
  version: string;
  /** Where HEAD was when the plan was made. */
  base: HeadState;
  changes: readonly FileChange[];
  /** Files to commit (changes, CHANGELOG.md, notes file); missing ones are skipped. */
  commitPaths: readonly string[];
  tagMessage: string;
  guard: Guard;
  /** Push the commit and tag to this branch (a remote check was made before). */
  push?: ((refspecs: string[]) => Promise<void>) | undefined;
  pushBranch?: string | undefined;
}

interface Journal {
  written: FileChange[];
  /** path → blob id this run put in the index. */
  staged: Map<string, string>;
  commit?: string;
  tagObject?: string;
}

export interface StableOutcome {
  commit?: string;
  pushed: boolean;
}

export async function runStable(t: StableTransaction): Promise<StableOutcome> {
  const { root, guard } = t;
  const j: Journal = { written: [], staged: new Map() };
  const identity = identityEnv(t.config.git);
  const out: StableOutcome = { pushed: false };
  try {
    for (const c of t.changes) {
      const abs = join(root, c.path);
      mkdirSync(dirname(abs), { recursive: true });
      writeFileSync(abs, c.after);
      j.written.push(c);
    }
    await guard.step('after-write');
    const paths = [...new Set(t.commitPaths)].filter((p) => existsSync(join(root, p)));
    // Files the repository ignores (e.g. a notes directory in .gitignore) are written, not committed.
    const ignored = paths.length
      ? await git(root, ['check-ignore', '--', ...paths], { allowFailure: true })
      : undefined;
    const skip = new Set(ignored?.exitCode === 0 ? ignored.stdout.split('\n').filter(Boolean) : []);
    if (skip.size) logger.info(`not committed (ignored by git): ${[...skip].join(', ')}`);
    const staged = paths.filter((f) => !skip.has(f));
    if (staged.length) {
      // The blob ids `git add` will record (same filters), known before it runs.
      const oids = (await gitOut(root, ['hash-object', '--', ...staged])).split('\n');
      for (const [i, p] of staged.entries()) j.staged.set(p, oids[i]!);
      await git(root, ['add', '--', ...staged]);
    }
    await guard.step('after-add');
    const pending = await git(root, ['diff', '--cached', '--quiet'], { allowFailure: true });
    if (pending.exitCode !== 0) {
      await expectHead(root, t.base, 'before the release commit');
      const tree = await gitOut(root, ['write-tree']);
      const message = commitMessage(t.config.git.commitMessage, t.tag, t.version);
      j.commit = await gitOut(root, ['commit-tree', '--no-gpg-sign', '-p', t.base.sha, '-m', message, tree], {
        env: identity,
      });
      const moved = await git(root, casArgs(t.base.ref, j.commit, t.base.sha, `signet: ${message}`), {
        allowFailure: true,
      });
      if (moved.exitCode !== 0) await expectHead(root, t.base, 'before the release commit');
      if (moved.exitCode !== 0)
        throw new SignetError('E_TOOL_FAILED', `git update-ref: ${moved.stderr.trim()}`);
      out.commit = j.commit;
    } else {
      // Nothing to commit (a first release whose changelog is already committed, or an
      // interrupted release whose commit is at HEAD): the tag goes on HEAD.
      logger.info('nothing to commit: the release tag goes on HEAD');
    }
    await guard.step('after-commit');
    const target: HeadState = { sha: j.commit ?? t.base.sha, ref: t.base.ref };
    await expectHead(root, target, 'before the release tag');
    const tagger = await gitOut(root, ['var', 'GIT_COMMITTER_IDENT'], { env: identity });
    const body = await git(root, ['stripspace'], { input: t.tagMessage });
    const tagText = `object ${target.sha}\ntype commit\ntag ${t.tag}\ntagger ${tagger}\n\n${body.stdout}`;
    j.tagObject = (await git(root, ['mktag'], { input: tagText })).stdout.trim();
    const made = await git(root, ['update-ref', `refs/tags/${t.tag}`, j.tagObject, ''], {
      allowFailure: true,
    });
    if (made.exitCode !== 0) {
      delete j.tagObject;
      throw new SignetError('E_TOOL_FAILED', `tag ${t.tag} cannot be created: ${made.stderr.trim()}`, {
        details: { tag: t.tag },
      });
    }
    await guard.step('after-tag');
    if (t.push && t.pushBranch) {
      await t.push([`${target.sha}:refs/heads/${t.pushBranch}`, `refs/tags/${t.tag}`]);
      out.pushed = true;
    }
    return out;
  } catch (e) {
    const what = [j.tagObject && 'tag', j.commit && 'commit', j.written.length && 'files'].filter(Boolean);
    const signal = e instanceof Interrupted ? e.signal : guard.signal;
    logger.warn(
      `release ${signal ? `interrupted by ${signal}` : 'failed'}; rolling back${what.length ? ` (${what.join(', ')})` : ''}`,
    );
    await rollback(t, j);
    if (signal) throw e instanceof Interrupted ? e : new Interrupted(signal);
    if (isSignetError(e) && ['E_PUSH_REJECTED', 'E_RELEASE_HEAD_MOVED'].includes(e.code)) throw e;
    throw new SignetError(
      'E_RELEASE_ROLLED_BACK',
      `release of ${t.tag} failed and was rolled back: ${(e as Error).message}`,
      {
        cause: e,
        details: { tag: t.tag },
      },
    );
  }
}

/**
 * A compare-and-swap ref update (`args`), tried again while `ref` still holds this run's value
 * `ours`: a git interrupted by the same signal, or git's own ref lock busy past its wait, fails
 * once without meaning the ref is someone else's. False when it did not go through.
 */
async function casUpdate(root: string, args: string[], ref: string, ours: string): Promise<boolean> {
  for (let attempt = 0; attempt < 3; attempt++) {
    if ((await git(root, args, { allowFailure: true })).exitCode === 0) return true;
    const cur = await git(root, ['rev-parse', '-q', '--verify', ref], { allowFailure: true });
    if (cur.exitCode !== 0 || cur.stdout.trim() !== ours) return false;
    await sleep(50 * (attempt + 1));
  }
  return false;
}

/** Undoes what the journal records, where the repository still holds this run's values. */
async function rollback(t: StableTransaction, j: Journal): Promise<void> {
  const { root } = t;
  const left: string[] = [];
  if (j.tagObject) {
    const ref = `refs/tags/${t.tag}`;
    if (!(await casUpdate(root, ['update-ref', '-d', ref, j.tagObject], ref, j.tagObject))) {
      const cur = await git(root, ['rev-parse', '-q', '--verify', ref], { allowFailure: true });
      left.push(
        cur.stdout.trim() === j.tagObject
          ? `tag ${t.tag} (git would not delete it: \`git tag -d ${t.tag}\` once no git runs)`
          : `tag ${t.tag} (no longer the one this run made)`,
      );
    }
  }
  if (j.commit)
    await casUpdate(
      root,
      casArgs(t.base.ref, t.base.sha, j.commit, 'signet: rollback'),
      t.base.ref,
      j.commit,
    );
  const now = await headState(root).catch(() => undefined);
  if (!now || now.sha !== t.base.sha || now.ref !== t.base.ref) {
    left.push(
      `HEAD (${now ? `${now.ref} at ${now.sha.slice(0, 12)}` : 'unreadable'}), the index and the work tree`,
    );
    logger.warn(`rollback: left as found, not this run's: ${left.join('; ')}`);
    return;
  }
  if (j.staged.size) {
    const cur = await indexEntries(root, [...j.staged.keys()]).catch(() => new Map<string, string>());
    const mine = [...j.staged].filter(([p, oid]) => cur.get(p) === oid).map(([p]) => p);
    if (mine.length) await git(root, ['reset', '-q', t.base.sha, '--', ...mine], { allowFailure: true });
  }
  for (const c of j.written) {
    const abs = join(root, c.path);
    try {
      if (!existsSync(abs) || readFileSync(abs, 'utf8') !== c.after) {
        left.push(`${c.path} (changed since this run wrote it)`);
        continue;
      }
      if (c.before === null) unlinkSync(abs);
      else writeFileSync(abs, c.before);
    } catch (e) {
      left.push(`${c.path} (${(e as Error).message})`);
    }
  }
  if (left.length) logger.warn(`rollback: left as found, not this run's: ${left.join('; ')}`);
}
