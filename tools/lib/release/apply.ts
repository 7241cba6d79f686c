/**
 * Applying a plan. Stable: write manifests and the changelog → commit → annotated tag (last) →
 * optional atomic push of both. Beta: an annotated tag on HEAD (idempotent for the same run
 * number; moved only with `force`) → optional push of that tag. A real run holds the repository's
 * release lock (./lock.ts) from before the plan to the end; Ctrl-C/SIGTERM and every failure roll
 * back what this run made (./stable.ts, ./interrupt.ts), so nothing half-made is left; a release
 * commit left untagged (a killed run) is finished by the next run (./resume.ts).
 * `dryRun` computes the same changes and their diff and touches nothing (and takes no lock).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
import { SignetError } from '../errors.ts';
import { git, gitOut, isDirty, remoteUrl, repoInfo } from '../git/git.ts';
import { logger } from '../log.ts';
import { cargoLockFor, cargoPackageNames, updateCargoLock, writeVersion } from '../manifests/index.ts';
import { type Channel, planFromRepo, type ReleasePlan, type RepoPlan } from '../version/index.ts';
import type { FileChange } from './files.ts';
import { type Guard, guardSignals } from './interrupt.ts';
import { acquireReleaseLock } from './lock.ts';
import { pushArgs, pushAuth } from './push.ts';
import { unfinishedRelease } from './resume.ts';
import { headState, identityEnv, runStable } from './stable.ts';

export { commitMessage } from './stable.ts';

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
  /** Stable: HEAD was the untagged release commit of an interrupted run; only the tag was made. */
  resumed?: boolean;
}

export function releaseDate(env: NodeJS.ProcessEnv = process.env, now: Date = new Date()): string {
  const epoch = env['SOURCE_DATE_EPOCH'];
  const d = epoch && /^\d+$/.test(epoch) ? new Date(Number(epoch) * 1000) : now;
  return d.toISOString().slice(0, 10);
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
  if (options.dryRun) return planAndApply(options, undefined);
  // One release at a time per repository (./lock.ts), taken before the plan reads HEAD and tags.
  const { root } = await repoInfo(options.cwd, { message: false });
  // The signal guard goes up before the lock: a Ctrl-C while the lock is being taken must not kill
  // the process between git creating the ref and this run knowing it holds it.
  let lock: Awaited<ReturnType<typeof acquireReleaseLock>> | undefined;
  const guard = guardSignals(() => lock?.releaseSync(), options.env ?? process.env);
  try {
    lock = await acquireReleaseLock(root);
    await guard.step('after-lock');
    return await planAndApply(options, guard);
  } finally {
    await lock?.release();
    // A signal received during the run: re-raised now that everything is rolled back and unlocked.
    guard.close(true);
  }
}

async function planAndApply(options: ApplyOptions, guard: Guard | undefined): Promise<ApplyResult> {
  const env = options.env ?? process.env;
  const config = options.config;
  const dryRun = Boolean(options.dryRun);
  const rp = await planFromRepo({
    cwd: options.cwd,
    config: config.version,
    commitMessage: config.git.commitMessage,
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
  const { root } = rp;
  let { plan } = rp;
  // An interrupted stable release left its commit untagged: finish it (./resume.ts).
  const unfinished =
    options.channel === 'stable' ? await unfinishedRelease(rp, config, options.date) : undefined;
  if (unfinished) {
    plan = {
      ...plan,
      released: true,
      version: unfinished.version,
      tag: unfinished.tag,
      reason: `the release commit of ${unfinished.tag} at HEAD is not tagged yet: finishing it`,
      manifestUpdates: [],
    };
  }
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

  if (options.channel === 'beta') return applyBeta(rp, plan, result, options, existing);

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
  let notes: RenderedNotes | undefined;
  let changes: FileChange[] = [];
  if (unfinished) {
    result.resumed = true;
    result.notesPath = notesFilePath(config.changelog, unfinished.version);
  } else {
    const date = options.date ?? releaseDate(env);
    ({ notes, changes } = await stableChanges(rp, config, date));
    result.notes = notes;
    result.notesPath = notesFilePath(config.changelog, notes.version);
    result.files = changes.map((c) => c.path);
  }
  if (dryRun) {
    result.diff = await diffChanges(changes);
    return result;
  }
  const base = await headState(root);
  if (base.sha !== rp.head.sha) {
    throw new SignetError('E_RELEASE_HEAD_MOVED', `HEAD moved while the release was planned`, {
      details: { expected: rp.head.sha, found: base.sha },
    });
  }
  const outcome = await runStable({
    root,
    config,
    tag: plan.tag,
    version: plan.version,
    base,
    changes,
    // CHANGELOG.md and the notes file are committed even when they were already written (e.g. by
    // `signet changelog --write`) and so are not among the changes.
    commitPaths: unfinished ? [] : [...result.files, config.changelog.file, result.notesPath!],
    tagMessage: `${plan.tag}\n\n${unfinished ? unfinished.body : notes!.body}`,
    guard: guard!,
    push: options.push ? (refspecs) => push(root, config, refspecs, env, false) : undefined,
    pushBranch: rp.head.branch,
  });
  if (outcome.commit) result.commit = outcome.commit;
  result.pushed = outcome.pushed;
  return result;
}

async function applyBeta(
  rp: RepoPlan,
  plan: ReleasePlan,
  result: ApplyResult,
  options: ApplyOptions,
  existing: RepoPlan['tags'][number] | undefined,
): Promise<ApplyResult> {
  const { root } = rp;
  const tag = plan.tag!;
  if (existing && existing.commit === rp.head.sha) result.unchanged = true;
  else if (existing && !options.force) {
    throw new SignetError(
      'E_TAG_EXISTS',
      `tag ${tag} already exists on ${existing.commit.slice(0, 12)}, not on HEAD`,
      {
        details: { tag, commit: existing.commit },
      },
    );
  }
  if (options.dryRun) {
    result.diff = '';
    return result;
  }
  const ref = `refs/tags/${tag}`;
  const previousRef = existing ? await gitOut(root, ['rev-parse', ref]) : undefined;
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
        tag,
        tag,
        rp.head.sha,
      ],
      { env: identityEnv(options.config.git) },
    );
  }
  if (options.push) {
    const made = result.unchanged ? undefined : await gitOut(root, ['rev-parse', ref]);
    try {
      await push(root, options.config, [ref], options.env ?? process.env, Boolean(existing && options.force));
      result.pushed = true;
    } catch (e) {
      // Compare-and-swap: only the tag this run made is deleted or moved back.
      if (made)
        await git(
          root,
          previousRef ? ['update-ref', ref, previousRef, made] : ['update-ref', '-d', ref, made],
          {
            allowFailure: true,
          },
        );
      throw e;
    }
  }
  return result;
}
