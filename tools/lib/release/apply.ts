/**
 * Applying a plan. Stable: write manifests and the changelog → commit → annotated tag (last) →
 * optional atomic push of both. Beta: an annotated tag on HEAD (idempotent for the same run
 * number; moved only with `force`) → optional push of that tag. Any failure rolls back what was
 * made (files restored, commit reset, tag deleted or moved back), so nothing half-made is left.
 * `dryRun` computes the same changes and their diff and touches nothing.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import {
  changelogChanges,
  notesPath as notesFilePath,
  notesLean,
  type RenderedNotes,
  renderNotes,
  resolveRepoLink,
} from '../changelog/index.ts';
import type { SignetConfig } from '../config/schema.ts';
import { isSignetError, SignetError } from '../errors.ts';
import { git, gitOut, isDirty, remoteUrl } from '../git/git.ts';
import { logger } from '../log.ts';
import { cargoLockFor, cargoPackageNames, updateCargoLock, writeVersion } from '../manifests/index.ts';
import { type Channel, planFromRepo, type ReleasePlan, type RepoPlan } from '../version/index.ts';
import type { FileChange } from './files.ts';
import { pushArgs, pushAuth } from './push.ts';

export type ReleaseConfig = Pick<SignetConfig, 'version' | 'changelog' | 'git'>;

export interface ApplyOptions {
  cwd: string;
  config: ReleaseConfig;
  channel: Channel;
  runNumber?: number | undefined;
  tagPrefix?: string | undefined;
  component?: string | undefined;
  dryRun?: boolean;
  push?: boolean;
  /** Beta only: move a same-named tag that points at another commit. */
  force?: boolean;
  /** Release date YYYY-MM-DD (default: SOURCE_DATE_EPOCH or today, UTC). */
  date?: string | undefined;
  env?: NodeJS.ProcessEnv;
}

export interface ApplyResult {
  plan: ReleasePlan;
  /** Id of the release commit (stable, applied). */
  commit?: string;
  /** The tag made (or that would be made on a dry run). */
  tag?: string;
  /** Files written (or that would be written), relative to the repository root. */
  files: string[];
  /** Per-version notes file (stable). */
  notesPath?: string;
  /** The rendered notes (stable). */
  notes?: RenderedNotes;
  /** Unified diff of every file that would change (dry run). */
  diff?: string;
  dryRun: boolean;
  pushed: boolean;
  /** Beta re-run: the tag already pointed at HEAD; nothing was moved. */
  unchanged?: boolean;
}

export function releaseDate(env: NodeJS.ProcessEnv = process.env, now: Date = new Date()): string {
  const epoch = env['SOURCE_DATE_EPOCH'];
  const d = epoch && /^\d+$/.test(epoch) ? new Date(Number(epoch) * 1000) : now;
  return d.toISOString().slice(0, 10);
}

export function commitMessage(template: string, tag: string, version: string): string {
  return template.replaceAll('{tag}', tag).replaceAll('{version}', version);
}

/** Unified diff of planned changes, made by `git diff --no-index` on temporary copies. */
export async function diffChanges(changes: readonly FileChange[]): Promise<string> {
  if (!changes.length) return '';
  const tmp = mkdtempSync(join(tmpdir(), 'signet-diff-'));
  try {
    const out: string[] = [];
    for (const c of changes) {
      const a = join(tmp, 'a', c.path);
      const b = join(tmp, 'b', c.path);
      mkdirSync(dirname(b), { recursive: true });
      writeFileSync(b, c.after);
      if (c.before !== null) {
        mkdirSync(dirname(a), { recursive: true });
        writeFileSync(a, c.before);
      }
      const r = await git(
        tmp,
        [
          'diff',
          '--no-index',
          '--no-color',
          '--no-prefix',
          '--',
          c.before === null ? '/dev/null' : `a/${c.path}`,
          `b/${c.path}`,
        ],
        { allowFailure: true },
      );
      if (r.exitCode > 1) throw new SignetError('E_TOOL_FAILED', `git diff failed: ${r.stderr.trim()}`);
      out.push(r.stdout);
    }
    return out.join('');
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

function identityEnv(cfg: ReleaseConfig['git']): Record<string, string> {
  return {
    GIT_AUTHOR_NAME: cfg.authorName,
    GIT_AUTHOR_EMAIL: cfg.authorEmail,
    GIT_COMMITTER_NAME: cfg.authorName,
    GIT_COMMITTER_EMAIL: cfg.authorEmail,
  };
}

/** The notes of a stable plan and the file changes (manifests, CHANGELOG.md, notes file). */
export async function stableChanges(
  rp: RepoPlan,
  config: ReleaseConfig,
  date: string,
): Promise<{ notes: RenderedNotes; changes: FileChange[] }> {
  const remote = await remoteUrl(rp.root, config.git.remote);
  const notes = renderNotes(rp.plan, rp.commits, {
    sections: config.changelog.sections,
    releaseRules: config.version.releaseRules,
    repo: resolveRepoLink(config.changelog, remote),
    date,
  });
  const changes: FileChange[] = [];
  for (const u of rp.plan.manifestUpdates) {
    const m = rp.manifests.find((x) => x.path === u.path)!;
    changes.push({ path: m.path, before: m.text, after: writeVersion(m.spec, m.text, u.to) });
  }
  // Cargo.lock follows every Cargo.toml, by package name (`cargo build --locked` must still pass
  // after a release; a stale lock is repaired even when the Cargo.toml already had the version).
  for (const m of rp.manifests) {
    if (m.type !== 'cargo') continue;
    const lock = cargoLockFor(rp.root, m.path);
    if (!lock) continue;
    const names = cargoPackageNames(rp.root, m.path, m.text);
    const existing = changes.find((c) => c.path === lock);
    const before = existing ? existing.after : readFileSync(join(rp.root, lock), 'utf8');
    const after = updateCargoLock(before, names, rp.plan.version!);
    if (after === before) continue;
    if (existing) existing.after = after;
    else changes.push({ path: lock, before, after });
  }
  changes.push(...changelogChanges(rp.root, config.changelog, notes));
  return { notes, changes };
}

function restoreFiles(root: string, changes: readonly FileChange[]): void {
  for (const c of changes) {
    const abs = join(root, c.path);
    try {
      if (c.before === null) unlinkSync(abs);
      else writeFileSync(abs, c.before);
    } catch (e) {
      logger.warn(`rollback: could not restore ${c.path}: ${(e as Error).message}`);
    }
  }
}

async function push(
  root: string,
  config: ReleaseConfig,
  refspecs: string[],
  env: NodeJS.ProcessEnv,
  force: boolean,
): Promise<void> {
  const url = await remoteUrl(root, config.git.remote);
  if (!url) {
    throw new SignetError('E_INPUT_INVALID', `remote "${config.git.remote}" does not exist`, {
      hint: 'Add the remote or set `git.remote` in the config.',
      details: { field: 'git.remote' },
    });
  }
  const auth = pushAuth(url, config.git.tokenEnv, env);
  const r = await git(root, [...auth.configArgs, ...pushArgs(config.git.remote, refspecs, { force })], {
    env: auth.env,
    allowFailure: true,
    timeoutMs: 300_000,
  });
  if (r.exitCode !== 0) {
    const tail = (r.stderr || r.stdout).trim().split('\n').slice(-8).join('\n');
    throw new SignetError('E_PUSH_REJECTED', `push to ${config.git.remote} failed:\n${tail}`, {
      details: { remote: config.git.remote, refs: refspecs },
    });
  }
}

export async function applyRelease(options: ApplyOptions): Promise<ApplyResult> {
  const env = options.env ?? process.env;
  const config = options.config;
  const dryRun = Boolean(options.dryRun);
  const rp = await planFromRepo({
    cwd: options.cwd,
    config: config.version,
    channel: options.channel,
    runNumber: options.runNumber,
    tagPrefix: options.tagPrefix,
    component: options.component,
    env,
    lean:
      options.channel === 'beta'
        ? true
        : notesLean({ sections: config.changelog.sections, releaseRules: config.version.releaseRules }),
  });
  const { plan, root } = rp;
  const result: ApplyResult = { plan, files: [], dryRun, pushed: false };
  if (!plan.released || !plan.tag || !plan.version) return result;
  result.tag = plan.tag;
  if (options.push && !(await remoteUrl(root, config.git.remote))) {
    throw new SignetError(
      'E_INPUT_INVALID',
      `remote "${config.git.remote}" does not exist; nothing was pushed`,
      {
        hint: 'Add the remote or set `git.remote` in the config.',
        details: { field: 'git.remote' },
      },
    );
  }
  const existing = rp.tags.find((t) => t.name === plan.tag);
  const identity = identityEnv(config.git);

  if (options.channel === 'beta') {
    if (existing && existing.commit === rp.head.sha) result.unchanged = true;
    else if (existing && !options.force) {
      throw new SignetError(
        'E_TAG_EXISTS',
        `tag ${plan.tag} already exists on ${existing.commit.slice(0, 12)}, not on HEAD`,
        {
          details: { tag: plan.tag, commit: existing.commit },
        },
      );
    }
    if (dryRun) {
      result.diff = '';
      return result;
    }
    const previousRef = existing ? await gitOut(root, ['rev-parse', `refs/tags/${plan.tag}`]) : undefined;
    if (!result.unchanged) {
      await git(
        root,
        [
          'tag',
          '-a',
          '--no-sign',
          '--cleanup=whitespace',
          ...(existing ? ['-f'] : []),
          '-m',
          plan.tag,
          plan.tag,
          rp.head.sha,
        ],
        {
          env: identity,
        },
      );
    }
    if (options.push) {
      try {
        await push(root, config, [`refs/tags/${plan.tag}`], env, Boolean(existing && options.force));
        result.pushed = true;
      } catch (e) {
        if (!result.unchanged) {
          if (previousRef)
            await git(root, ['update-ref', `refs/tags/${plan.tag}`, previousRef], { allowFailure: true });
          else await git(root, ['tag', '-d', plan.tag], { allowFailure: true });
        }
        throw e;
      }
    }
    return result;
  }

  // stable
  if (existing) {
    throw new SignetError(
      'E_TAG_EXISTS',
      `tag ${plan.tag} already exists (on ${existing.commit.slice(0, 12)})`,
      {
        details: { tag: plan.tag, commit: existing.commit },
      },
    );
  }
  if (options.push && !rp.head.branch) {
    throw new SignetError(
      'E_DETACHED_HEAD',
      'HEAD is detached: a stable release cannot be pushed to a branch',
      {
        details: { head: rp.head.sha },
      },
    );
  }
  const dirty = await isDirty(root);
  if (dirty.length) {
    if (!dryRun) {
      throw new SignetError(
        'E_DIRTY_TREE',
        `the work tree has uncommitted changes: ${dirty.slice(0, 10).join(', ')}`,
        {
          details: { files: dirty.slice(0, 50) },
        },
      );
    }
    logger.warn(`the work tree has uncommitted changes (${dirty.length} files); a real release would refuse`);
  }
  const date = options.date ?? releaseDate(env);
  const { notes, changes } = await stableChanges(rp, config, date);
  result.notes = notes;
  result.notesPath = notesFilePath(config.changelog, notes.version);
  result.files = changes.map((c) => c.path);
  if (dryRun) {
    result.diff = await diffChanges(changes);
    return result;
  }

  const origHead = rp.head.sha;
  let committed = false;
  let tagged = false;
  let staged: string[] = [];
  try {
    for (const c of changes) {
      const abs = join(root, c.path);
      mkdirSync(dirname(abs), { recursive: true });
      writeFileSync(abs, c.after);
    }
    // CHANGELOG.md and the notes file are committed even when they were already written (e.g. by
    // `signet changelog --write`) and so are not among the changes.
    const paths = [...new Set([...result.files, config.changelog.file, result.notesPath!])].filter((p) =>
      existsSync(join(root, p)),
    );
    // Files the repository ignores (e.g. a notes directory in .gitignore) are written, not committed.
    const ignored = await git(root, ['check-ignore', '--', ...paths], { allowFailure: true });
    const skip = new Set(ignored.exitCode === 0 ? ignored.stdout.split('\n').filter(Boolean) : []);
    if (skip.size) logger.info(`not committed (ignored by git): ${[...skip].join(', ')}`);
    staged = paths.filter((f) => !skip.has(f));
    if (staged.length) await git(root, ['add', '--', ...staged]);
    const pending = await git(root, ['diff', '--cached', '--quiet'], { allowFailure: true });
    if (pending.exitCode !== 0) {
      const message = commitMessage(config.git.commitMessage, plan.tag, plan.version);
      await git(root, ['commit', '-q', '--no-verify', '--no-gpg-sign', '--cleanup=verbatim', '-m', message], {
        env: identity,
      });
      committed = true;
      result.commit = await gitOut(root, ['rev-parse', 'HEAD']);
    } else {
      // Nothing to commit (a first release whose changelog is already committed): tag HEAD.
      logger.info('nothing to commit: the release tag goes on HEAD');
    }
    const target = result.commit ?? origHead;
    await git(
      root,
      [
        'tag',
        '-a',
        '--no-sign',
        '--cleanup=whitespace',
        '-m',
        `${plan.tag}\n\n${notes.body}`,
        plan.tag,
        target,
      ],
      {
        env: identity,
      },
    );
    tagged = true;
    if (options.push) {
      await push(root, config, [`HEAD:refs/heads/${rp.head.branch}`, `refs/tags/${plan.tag}`], env, false);
      result.pushed = true;
    }
    return result;
  } catch (e) {
    logger.warn(`release failed; rolling back (${tagged ? 'tag, ' : ''}${committed ? 'commit, ' : ''}files)`);
    if (tagged) await git(root, ['tag', '-d', plan.tag], { allowFailure: true });
    if (committed) await git(root, ['reset', '-q', '--soft', origHead], { allowFailure: true });
    const unstage = [...new Set([...result.files, ...staged])];
    if (unstage.length) await git(root, ['reset', '-q', origHead, '--', ...unstage], { allowFailure: true });
    restoreFiles(root, changes);
    delete result.commit;
    if (isSignetError(e) && e.code === 'E_PUSH_REJECTED') throw e;
    throw new SignetError(
      'E_RELEASE_ROLLED_BACK',
      `release of ${plan.tag} failed and was rolled back: ${(e as Error).message}`,
      {
        cause: e,
        details: { tag: plan.tag },
      },
    );
  }
}
