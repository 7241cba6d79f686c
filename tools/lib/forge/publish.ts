/**
 * Publishing = plan, then apply. `planPublish` reads what the forge has and decides, per asset,
 * skip / upload / replace / rename / delete; `applyPublish` carries it out in an order that can
 * fail at any step and converge on the next run:
 *
 *   1. find the release by tag (drafts included) or create it as a draft; drop duplicate drafts
 *   2. upload streamed; replace a differing asset through a temporary name (upload tmp → delete
 *      old → rename), so the release never lacks that asset; finish a replacement a failed run left
 *   3. delete assets that are not part of the release (leftovers, stale temporaries)
 *   4. verify gate: signatures of every .exe/.msi/.dll (checked before any upload, by the signing
 *      layer) and the SHA-256 of every asset as stored by the forge (read back) against the files
 *   5. set title, body and prerelease, and un-draft.
 */
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import {
  type ArtifactKind,
  artifactKind,
  type SignatureInfo,
  type SignedArtifact,
  sha256File,
} from '../artifact.ts';
import { SignetError } from '../errors.ts';
import { logger } from '../log.ts';
import { DIR_RESERVED } from './dir.ts';
import { contentTypeFor } from './http.ts';
import { type Channel, type ChecksumEntry, loadNotesTemplate, renderNotes, sha256sums } from './notes.ts';
import type { Forge, RemoteAsset, RemoteRelease } from './types.ts';

export const TEMP_PREFIX = 'signet-tmp-';
export const SUMS_NAME = 'SHA256SUMS';
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._+-]*$/;

export interface LocalAsset extends ChecksumEntry {
  path: string;
  kind: ArtifactKind;
  signature?: SignatureInfo | undefined;
}

export interface PublishInput {
  tag: string;
  /** Defaults to the tag without its leading "v". */
  version?: string | undefined;
  channel: Channel;
  /** Defaults to the tag. */
  title?: string | undefined;
  /** Changelog notes (markdown) for the stable body. */
  notes?: string | undefined;
  files: readonly string[];
  /** Commit the tag points at, if the forge has to create the tag. */
  target?: string | undefined;
  templatesDir?: string | undefined;
  cwd?: string | undefined;
  /** Upload SHA256SUMS as an asset (default true). */
  checksumsAsset?: boolean | undefined;
  /** Delete remote assets that are not part of this release (default true). */
  prune?: boolean | undefined;
  /**
   * The signing layer's verify (e.g. `signer.verify` or `verifyFile`). Every .exe/.msi/.dll goes
   * through it before anything is uploaded; without it such files are refused.
   */
  verify?: ((path: string) => Promise<SignedArtifact>) | undefined;
  /** Allow dev-certificate signatures on a stable release to a remote forge (default false). */
  allowDevSignatures?: boolean | undefined;
  /** Parallel uploads (default 2). */
  concurrency?: number | undefined;
  /**
   * `release` (default): the whole release — body, SHA256SUMS, prune, un-draft.
   * `attach`: add or replace these assets on an existing release and touch nothing else
   * (no SHA256SUMS, no prune, title/body/state kept) — e.g. site installers built later.
   */
  mode?: 'release' | 'attach' | undefined;
}

export type AssetAction =
  | { kind: 'skip'; name: string; reason: string }
  | { kind: 'upload'; name: string; reason: string }
  | { kind: 'replace'; name: string; reason: string; remote: RemoteAsset }
  | { kind: 'rename'; name: string; reason: string; remote: RemoteAsset }
  | { kind: 'delete'; name: string; reason: string; remote: RemoteAsset };

export interface PublishPlan {
  forge: string;
  tag: string;
  version: string;
  channel: Channel;
  prerelease: boolean;
  title: string;
  body: string;
  release: { action: 'create' } | { action: 'reuse'; id: number; draft: boolean; url: string };
  /** Extra draft releases of the same tag (left by an interrupted run) that will be deleted. */
  duplicates: { id: number; draft: boolean }[];
  local: LocalAsset[];
  actions: AssetAction[];
  /** What applying changes; false when the release is already exactly as intended. */
  changes: boolean;
}

export interface PublishResult {
  forge: string;
  tag: string;
  version: string;
  channel: Channel;
  prerelease: boolean;
  draft: boolean;
  releaseId: number;
  url: string;
  title: string;
  assets: { name: string; size: number; sha256: string; action: AssetAction['kind'] | 'kept' }[];
  deleted: string[];
  signatures: { name: string; subject: string; leafSha256: string; dev: boolean }[];
  gate: { checked: number; signed: number; passed: true };
}

/** Everything local: names checked, files hashed, signatures verified, SHA256SUMS and the body written. */
export interface PreparedRelease {
  input: PublishInput;
  version: string;
  title: string;
  body: string;
  local: LocalAsset[];
  workDir: string;
  cleanup(): void;
}

export function tempName(asset: ChecksumEntry): string {
  return `${TEMP_PREFIX}${asset.sha256.slice(0, 16)}-${asset.name}`;
}

function parseTempName(name: string): { sha16: string; name: string } | undefined {
  const m = /^signet-tmp-([0-9a-f]{16})-(.+)$/.exec(name);
  return m ? { sha16: m[1]!, name: m[2]! } : undefined;
}

async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  let failed: unknown;
  const workers = Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, async () => {
    while (next < items.length && failed === undefined) {
      const i = next++;
      try {
        out[i] = await fn(items[i]!);
      } catch (e) {
        failed ??= e;
      }
    }
  });
  await Promise.all(workers);
  if (failed !== undefined) throw failed;
  return out;
}

export async function prepareRelease(
  input: PublishInput,
  forgeKind: Forge['kind'],
): Promise<PreparedRelease> {
  const cwd = input.cwd ?? process.cwd();
  if (!/^[A-Za-z0-9][A-Za-z0-9._+\-/]*$/.test(input.tag))
    throw new SignetError('E_INPUT_INVALID', `tag ${JSON.stringify(input.tag)} is not a valid release tag`);
  const version = input.version ?? input.tag.replace(/^.*?v?(?=\d)/, '');
  const title = input.title ?? input.tag;
  if (input.files.length === 0)
    throw new SignetError('E_INPUT_INVALID', 'nothing to publish: no files given');

  const problems: string[] = [];
  const seen = new Map<string, string>();
  const files = input.files.map((f) => resolve(cwd, f));
  for (const path of files) {
    const name = basename(path);
    let isFile = false;
    try {
      isFile = statSync(path).isFile();
    } catch {}
    if (!isFile) problems.push(`${path}: not a file`);
    if (!NAME_RE.test(name))
      problems.push(
        `${name}: asset names may contain only letters, digits and . _ + - (forges rename anything else)`,
      );
    if (name.startsWith(TEMP_PREFIX)) problems.push(`${name}: the prefix ${TEMP_PREFIX} is reserved`);
    if (DIR_RESERVED.has(name) || name === SUMS_NAME) problems.push(`${name}: this name is reserved`);
    const prev = seen.get(name);
    if (prev) problems.push(`${name}: given twice (${prev} and ${path})`);
    seen.set(name, path);
  }
  if (problems.length)
    throw new SignetError('E_INPUT_INVALID', `cannot publish:\n  - ${problems.join('\n  - ')}`, {
      details: { problems },
    });

  const local: LocalAsset[] = await mapLimit(files, 2, async (path) => {
    const { size } = statSync(path);
    return { name: basename(path), path, size, sha256: await sha256File(path), kind: artifactKind(path) };
  });

  // Verify gate, part 1: every Windows binary verifies as signed before anything leaves the machine.
  const binaries = local.filter((a) => a.kind !== 'other');
  if (binaries.length && !input.verify)
    throw new SignetError(
      'E_PUBLISH_GATE',
      `refusing to publish ${binaries.map((b) => b.name).join(', ')}: no signature verifier configured`,
      {
        hint: 'Publishing .exe/.msi/.dll files needs the signing profile that verifies them (--profile).',
      },
    );
  for (const asset of binaries) {
    let signed: SignedArtifact;
    try {
      signed = await input.verify!(asset.path);
    } catch (e) {
      const err = e as SignetError;
      throw new SignetError('E_PUBLISH_GATE', `${asset.name} did not verify as signed: ${err.message}`, {
        details: { asset: asset.name, cause: err.code ?? 'error' },
        cause: e,
      });
    }
    if (signed.sha256 !== asset.sha256)
      throw new SignetError('E_PUBLISH_GATE', `${asset.name} changed while it was being verified`, {
        details: { asset: asset.name },
      });
    if (
      signed.signature.dev &&
      input.channel === 'stable' &&
      forgeKind !== 'dir' &&
      !input.allowDevSignatures
    )
      throw new SignetError(
        'E_PUBLISH_GATE',
        `${asset.name} is signed with a development certificate; refusing a stable release on ${forgeKind}`,
        {
          hint: 'Sign with the release profile, publish to the beta channel or to dir:, or pass --allow-dev-signatures for a test forge.',
        },
      );
    asset.signature = signed.signature;
  }

  const workDir = mkdtempSync(join(tmpdir(), 'signet-publish-'));
  const cleanup = () => rmSync(workDir, { recursive: true, force: true });
  try {
    if (input.mode === 'attach') return { input, version, title, body: '', local, workDir, cleanup };
    if (input.checksumsAsset !== false) {
      const sumsPath = join(workDir, SUMS_NAME);
      writeFileSync(sumsPath, sha256sums(local));
      const { size } = statSync(sumsPath);
      local.push({
        name: SUMS_NAME,
        path: sumsPath,
        size,
        sha256: await sha256File(sumsPath),
        kind: 'other',
      });
    }
    const template = loadNotesTemplate(input.channel, input.templatesDir, cwd);
    const signer = local.find((a) => a.signature)?.signature;
    const body = renderNotes(
      template.text,
      { channel: input.channel, tag: input.tag, version, title, notes: input.notes, assets: local, signer },
      template.path,
    );
    return { input, version, title, body, local, workDir, cleanup };
  } catch (e) {
    cleanup();
    throw e;
  }
}

function chooseRelease(found: RemoteRelease[]): {
  keep: RemoteRelease | undefined;
  duplicates: RemoteRelease[];
} {
  if (found.length === 0) return { keep: undefined, duplicates: [] };
  const published = found.filter((r) => !r.draft);
  if (published.length > 1)
    throw new SignetError(
      'E_FORGE_FAILED',
      `${published.length} published releases carry the tag ${found[0]!.tag}`,
      {
        hint: 'Delete the extra releases by hand; Signet only removes duplicate drafts.',
        details: { ids: published.map((r) => r.id) },
      },
    );
  const keep =
    published[0] ?? found.reduce((best, r) => (r.assets.length > best.assets.length ? r : best), found[0]!);
  return { keep, duplicates: found.filter((r) => r !== keep && r.draft) };
}

export async function planPublish(forge: Forge, prepared: PreparedRelease): Promise<PublishPlan> {
  const { input, local } = prepared;
  const found = await forge.findReleases(input.tag);
  const { keep, duplicates } = chooseRelease(found);
  const attach = input.mode === 'attach';
  if (attach && !keep)
    throw new SignetError(
      'E_FORGE_NOT_FOUND',
      `release ${input.tag} not found on ${forge.description}; attach needs an existing release`,
      {
        hint: 'Publish the release first, or check the tag.',
      },
    );
  const actions: AssetAction[] = [];
  const prerelease = input.channel === 'beta';
  if (keep) {
    const remote = await forge.listAssets(keep);
    const byName = new Map(remote.map((a) => [a.name, a]));
    const wanted = new Map(local.map((a) => [a.name, a]));
    const usedTemps = new Set<string>();
    for (const asset of local) {
      const existing = byName.get(asset.name);
      if (existing) {
        if (existing.size !== asset.size) {
          actions.push({
            kind: 'replace',
            name: asset.name,
            reason: `size ${existing.size} ≠ ${asset.size}`,
            remote: existing,
          });
          continue;
        }
        const sha = await forge.readBackSha256(keep, existing);
        if (sha === asset.sha256)
          actions.push({ kind: 'skip', name: asset.name, reason: 'same size and SHA-256' });
        else actions.push({ kind: 'replace', name: asset.name, reason: 'SHA-256 differs', remote: existing });
        continue;
      }
      const temp = byName.get(tempName(asset));
      if (temp && temp.size === asset.size && (await forge.readBackSha256(keep, temp)) === asset.sha256) {
        usedTemps.add(temp.name);
        actions.push({
          kind: 'rename',
          name: asset.name,
          reason: 'finish an interrupted replacement',
          remote: temp,
        });
        continue;
      }
      actions.push({ kind: 'upload', name: asset.name, reason: 'missing' });
    }
    if (input.prune !== false && !attach) {
      for (const a of remote) {
        if (wanted.has(a.name) || usedTemps.has(a.name)) continue;
        const reason = parseTempName(a.name) ? 'leftover temporary upload' : 'not part of this release';
        actions.push({ kind: 'delete', name: a.name, reason, remote: a });
      }
    }
  } else {
    for (const asset of local) actions.push({ kind: 'upload', name: asset.name, reason: 'new release' });
  }
  const changes = attach
    ? actions.some((a) => a.kind !== 'skip')
    : !keep ||
      duplicates.length > 0 ||
      actions.some((a) => a.kind !== 'skip') ||
      keep.draft ||
      keep.prerelease !== prerelease ||
      keep.title !== prepared.title ||
      keep.body.trim() !== prepared.body.trim();
  return {
    forge: forge.description,
    tag: input.tag,
    version: prepared.version,
    channel: input.channel,
    prerelease,
    title: prepared.title,
    body: prepared.body,
    release: keep ? { action: 'reuse', id: keep.id, draft: keep.draft, url: keep.url } : { action: 'create' },
    duplicates: (attach ? [] : duplicates).map((d) => ({ id: d.id, draft: d.draft })),
    local,
    actions,
    changes,
  };
}

async function uploadFresh(
  forge: Forge,
  release: RemoteRelease,
  asset: LocalAsset,
  name: string,
): Promise<RemoteAsset> {
  const started = Date.now();
  const input = { name, path: asset.path, size: asset.size, contentType: contentTypeFor(asset.name) };
  let uploaded: RemoteAsset;
  try {
    uploaded = await forge.uploadAsset(release, input);
  } catch (e) {
    // A name conflict after a reset upload: the half-written asset of our own earlier attempt.
    const status = (e as SignetError).details?.['status'];
    if (status !== 422 && status !== 409) throw e;
    const stale = (await forge.listAssets(release)).find((a) => a.name === name);
    if (stale) {
      logger.warn(`${name}: removing a partial upload left by an earlier attempt`);
      await forge.deleteAsset(release, stale);
    }
    uploaded = await forge.uploadAsset(release, input);
  }
  const secs = (Date.now() - started) / 1000;
  logger.info(`uploaded ${name} (${asset.size} bytes) in ${secs.toFixed(1)} s`);
  return uploaded;
}

export async function applyPublish(
  forge: Forge,
  prepared: PreparedRelease,
  plan: PublishPlan,
): Promise<PublishResult> {
  const { input, local } = prepared;
  const byName = new Map(local.map((a) => [a.name, a]));
  const prerelease = plan.prerelease;

  // 1. the release (a draft until the gate passed)
  let release: RemoteRelease;
  const found = await forge.findReleases(input.tag);
  const chosen = chooseRelease(found);
  const attach = input.mode === 'attach';
  if (attach && !chosen.keep) throw new SignetError('E_FORGE_NOT_FOUND', `release ${input.tag} disappeared`);
  for (const dup of attach ? [] : chosen.duplicates) {
    logger.warn(`deleting duplicate draft release ${dup.id} of ${input.tag}`);
    await forge.deleteRelease(dup);
  }
  if (chosen.keep) release = chosen.keep;
  else {
    release = await forge.createRelease({
      tag: input.tag,
      title: prepared.title,
      body: prepared.body,
      prerelease,
      draft: true,
      target: input.target,
    });
    logger.info(`created draft release ${input.tag} (${forge.description})`);
    // A lost response may have made the forge create it twice: keep ours, drop the other drafts.
    for (const other of await forge.findReleases(input.tag))
      if (other.id !== release.id && other.draft) await forge.deleteRelease(other);
  }

  // 2. assets
  const deleted: string[] = [];
  const done = new Map<string, AssetAction['kind']>();
  const leftovers = plan.actions.filter((a) => a.kind === 'delete' && parseTempName(a.name));
  for (const a of leftovers) {
    await forge.deleteAsset(release, (a as { remote: RemoteAsset }).remote);
    deleted.push(a.name);
  }
  const work = plan.actions.filter((a) => a.kind === 'upload' || a.kind === 'replace' || a.kind === 'rename');
  await mapLimit(work, input.concurrency ?? 2, async (action) => {
    const asset = byName.get(action.name)!;
    if (action.kind === 'upload') await uploadFresh(forge, release, asset, asset.name);
    else if (action.kind === 'rename') await forge.renameAsset(release, action.remote, asset.name);
    else if (action.kind === 'replace') {
      const tmp = await uploadFresh(forge, release, asset, tempName(asset));
      await forge.deleteAsset(release, action.remote);
      await forge.renameAsset(release, tmp, asset.name);
      logger.info(`replaced ${asset.name} (${action.reason})`);
    }
    done.set(action.name, action.kind);
  });

  // 3. prune what does not belong
  for (const a of plan.actions) {
    if (a.kind !== 'delete' || parseTempName(a.name)) continue;
    logger.info(`deleting asset ${a.name} (${a.reason})`);
    await forge.deleteAsset(release, a.remote);
    deleted.push(a.name);
  }

  // 4. gate: the forge holds exactly these files, byte for byte
  const remote = await forge.listAssets(release);
  const problems: string[] = [];
  const remoteByName = new Map(remote.map((a) => [a.name, a]));
  for (const asset of local) {
    const r = remoteByName.get(asset.name);
    if (!r) {
      problems.push(`${asset.name}: missing on the forge`);
      continue;
    }
    if (r.size !== asset.size) {
      problems.push(`${asset.name}: forge has ${r.size} bytes, local file ${asset.size}`);
      continue;
    }
    const sha = await forge.readBackSha256(release, r);
    if (sha !== asset.sha256) problems.push(`${asset.name}: forge SHA-256 ${sha} ≠ local ${asset.sha256}`);
  }
  if (input.prune !== false && !attach)
    for (const r of remote)
      if (!byName.has(r.name)) problems.push(`${r.name}: unexpected asset on the forge`);
  if (problems.length)
    throw new SignetError(
      'E_PUBLISH_GATE',
      `verify gate failed for ${input.tag}; the release stays a draft:\n  - ${problems.join('\n  - ')}`,
      {
        details: { problems },
      },
    );

  // 5. publish
  const final = await forge.updateRelease(release, {
    title: prepared.title,
    body: prepared.body,
    prerelease,
    draft: false,
  });
  logger.info(`published ${input.tag}${prerelease ? ' (prerelease)' : ''}: ${final.url}`);
  const signatures = local
    .filter((a) => a.signature)
    .map((a) => ({
      name: a.name,
      subject: a.signature!.subject,
      leafSha256: a.signature!.leafSha256,
      dev: a.signature!.dev,
    }));
  return {
    forge: forge.description,
    tag: input.tag,
    version: prepared.version,
    channel: input.channel,
    prerelease: final.prerelease,
    draft: final.draft,
    releaseId: final.id,
    url: final.url,
    title: attach ? final.title : prepared.title,
    assets: local.map((a) => ({
      name: a.name,
      size: a.size,
      sha256: a.sha256,
      action: done.get(a.name) ?? 'kept',
    })),
    deleted,
    signatures,
    gate: { checked: local.length, signed: signatures.length, passed: true },
  };
}

export interface PublishOutcome {
  plan: PublishPlan;
  /** Undefined on a dry run. */
  result?: PublishResult | undefined;
}

/** Prepare, plan and (unless dryRun) apply. */
export async function publishRelease(
  forge: Forge,
  input: PublishInput,
  options: { dryRun?: boolean } = {},
): Promise<PublishOutcome> {
  const prepared = await prepareRelease(input, forge.kind);
  try {
    const plan = await planPublish(forge, prepared);
    if (options.dryRun) return { plan };
    return { plan, result: await applyPublish(forge, prepared, plan) };
  } finally {
    prepared.cleanup();
  }
}

/** A plan as text for humans (dry run and logs). */
export function describePlan(plan: PublishPlan): string {
  const lines = [
    `${plan.release.action === 'create' ? 'create draft release' : `reuse release ${plan.release.id}${plan.release.draft ? ' (draft)' : ''}`} ${plan.tag} on ${plan.forge} (${plan.channel}${plan.prerelease ? ', prerelease' : ''})`,
  ];
  for (const d of plan.duplicates) lines.push(`  delete duplicate draft release ${d.id}`);
  for (const a of plan.actions) lines.push(`  ${a.kind.padEnd(7)} ${a.name} — ${a.reason}`);
  lines.push(plan.changes ? '  then: verify gate, set title/body, publish' : '  nothing to change');
  return lines.join('\n');
}
