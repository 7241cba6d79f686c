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
 *
 * Files are hashed while they stream to the forge (one read per file); only a file that already
 * exists remotely with the same size is hashed beforehand, to decide whether to skip it.
 * SHA256SUMS and the body are written once every hash is known.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import pLimit from 'p-limit';
import { type ArtifactKind, artifactKind, type SignatureInfo, type SignedArtifact } from '../artifact.ts';
import { SignetError } from '../errors.ts';
import type { Runner } from '../exec/runner.ts';
import { logger } from '../log.ts';
import { signableKind } from '../sign/content-kind.ts';
import { type Snapshot, takeSnapshot } from '../sign/snapshot.ts';
import { DIR_RESERVED } from './dir.ts';
import { contentTypeFor } from './http.ts';
import { type Channel, type ChecksumEntry, loadNotesTemplate, renderNotes, sha256sums } from './notes.ts';
import { checkSiteSecrets } from './site-secrets.ts';
import { hashFileLowMem } from './transport.ts';
import type { Forge, RemoteAsset, RemoteRelease, UploadedAsset } from './types.ts';

export const TEMP_PREFIX = 'signet-tmp-';
export const SUMS_NAME = 'SHA256SUMS';
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._+-]*$/;

export interface LocalAsset extends ChecksumEntry {
  /** What is read and uploaded: a private snapshot of `source` (prepareRelease), or a file Signet wrote. */
  path: string;
  /** The file the user named (messages), when `path` is its snapshot. */
  source?: string | undefined;
  kind: ArtifactKind;
  signature?: SignatureInfo | undefined;
  /** '' until known: hashed while uploading, or beforehand when a same-size remote asset must be compared. */
  sha256: string;
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
  /**
   * Publish files that carry a site's site.json (per-site installers, manifests) — refused by
   * default, detected by content (site-secrets.ts). Default false.
   */
  allowSiteInstallers?: boolean | undefined;
  /** Runs 7z for the site-installer check (default: the project's runner). */
  runner?: Runner | undefined;
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
  /** The body when every hash was known at planning time (a re-run); otherwise written after the uploads. */
  body: string | undefined;
  release: { action: 'create' } | { action: 'reuse'; id: number; draft: boolean; url: string };
  /** Extra draft releases of the same tag (left by an interrupted run) that will be deleted. */
  duplicates: { id: number; draft: boolean }[];
  local: LocalAsset[];
  actions: AssetAction[];
  /** The remote assets seen while planning (for SHA256SUMS, decided after the uploads). */
  remote: RemoteAsset[];
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
  /** Assets the signature gate did not check, and why (neither a PE nor a Compound File). */
  unchecked: { name: string; reason: 'not a signable type' }[];
  gate: { checked: number; signed: number; passed: true };
}

/** Everything local: names checked, signatures verified, the notes template loaded. */
export interface PreparedRelease {
  input: PublishInput;
  version: string;
  title: string;
  local: LocalAsset[];
  /** Absent in attach mode (no body is written). */
  template: { text: string; path: string } | undefined;
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

async function ensureHash(asset: LocalAsset): Promise<string> {
  if (!asset.sha256) {
    const h = await hashFileLowMem(asset.path);
    if (h.size !== asset.size)
      throw new SignetError(
        'E_INPUT_INVALID',
        `${asset.source ?? asset.path} changed size during the publish`,
      );
    asset.sha256 = h.sha256;
  }
  return asset.sha256;
}

/**
 * `fn` over `items` with at most `limit` in flight (p-limit). After the first failure no new item
 * starts; the ones in flight finish before the first error is thrown (nothing keeps running).
 */
async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  let failure: { error: unknown } | undefined;
  const out = await pLimit(Math.max(1, limit)).map(items, async (item) => {
    if (failure) return undefined as R;
    try {
      return await fn(item);
    } catch (error) {
      failure ??= { error };
      return undefined as R;
    }
  });
  if (failure) throw failure.error;
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
  const local: LocalAsset[] = [];
  for (const path of files) {
    const name = basename(path);
    let size = -1;
    try {
      const st = statSync(path);
      if (st.isFile()) size = st.size;
    } catch {}
    if (size < 0) problems.push(`${path}: not a file`);
    if (!NAME_RE.test(name))
      problems.push(
        `${name}: asset names may contain only letters, digits and . _ + - (forges rename anything else)`,
      );
    if (name.startsWith(TEMP_PREFIX)) problems.push(`${name}: the prefix ${TEMP_PREFIX} is reserved`);
    if (DIR_RESERVED.has(name) || name === SUMS_NAME) problems.push(`${name}: this name is reserved`);
    const prev = seen.get(name);
    if (prev) problems.push(`${name}: given twice (${prev} and ${path})`);
    seen.set(name, path);
    local.push({ name, path, source: path, size, sha256: '', kind: 'other' });
  }
  if (problems.length)
    throw new SignetError('E_INPUT_INVALID', `cannot publish:\n  - ${problems.join('\n  - ')}`, {
      details: { problems },
    });

  // Every file is read once, into a private snapshot: the site-secret check, the kind, the verify
  // gate and the upload all use those bytes, whatever happens to the user's path meanwhile.
  const workDir = mkdtempSync(join(tmpdir(), 'signet-publish-'));
  const snapshots: Snapshot[] = [];
  const cleanup = () => {
    for (const snap of snapshots) snap.release();
    rmSync(workDir, { recursive: true, force: true });
  };
  try {
    for (const asset of local) {
      const snap = takeSnapshot(asset.source!, { parent: workDir });
      snapshots.push(snap);
      asset.path = snap.path;
      asset.size = statSync(snap.path).size;
      // By content: a PE or Compound File is verified whatever its name (.sys, .scr, .cab, none);
      // a file *named* .exe/.msi/.dll is verified too (and fails) when its bytes are something else.
      const byContent = signableKind(snap.path);
      asset.kind = byContent !== 'other' ? byContent : artifactKind(asset.name);
    }
    await gateLocal(input, forgeKind, local);
    const template =
      input.mode === 'attach' ? undefined : loadNotesTemplate(input.channel, input.templatesDir, cwd);
    return { input, version, title, local, template, workDir, cleanup };
  } catch (e) {
    cleanup();
    throw e;
  }
}

/** Site secrets and signatures of the local snapshots, before anything leaves the machine. */
async function gateLocal(input: PublishInput, forgeKind: Forge['kind'], local: LocalAsset[]): Promise<void> {
  // A site's installers carry its enrollment key: refused before anything leaves the machine.
  await checkSiteSecrets(
    local.map((a) => a.path),
    { allow: input.allowSiteInstallers, runner: input.runner },
  );

  // Verify gate, part 1: every Windows binary verifies as signed before anything leaves the machine.
  const binaries = local.filter((a) => a.kind !== 'other');
  if (binaries.length && !input.verify)
    throw new SignetError(
      'E_PUBLISH_GATE',
      `refusing to publish ${binaries.map((b) => b.name).join(', ')}: no signature verifier configured`,
      {
        hint: 'Publishing Windows binaries (PE or MSI by content, whatever the name) needs the signing profile that verifies them (--profile).',
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
    // The verified content: what is uploaded must hash to this (checked while streaming).
    asset.sha256 = signed.sha256;
  }
}

function wantsSums(prepared: PreparedRelease): boolean {
  return prepared.input.mode !== 'attach' && prepared.input.checksumsAsset !== false;
}

/** SHA256SUMS written into the work folder (every local hash must be known). */
function writeSums(prepared: PreparedRelease): LocalAsset {
  const text = sha256sums(prepared.local);
  const path = join(prepared.workDir, SUMS_NAME);
  writeFileSync(path, text);
  return {
    name: SUMS_NAME,
    path,
    size: Buffer.byteLength(text),
    sha256: createHash('sha256').update(text).digest('hex'),
    kind: 'other',
  };
}

function renderBody(prepared: PreparedRelease, all: LocalAsset[]): string {
  const { input, template } = prepared;
  if (!template) return '';
  const signer = all.find((a) => a.signature)?.signature;
  return renderNotes(
    template.text,
    {
      channel: input.channel,
      tag: input.tag,
      version: prepared.version,
      title: prepared.title,
      notes: input.notes,
      assets: all,
      signer,
    },
    template.path,
  );
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

/** Decides skip / upload / replace / rename for one local asset against the remote listing. */
async function assetAction(
  forge: Forge,
  release: RemoteRelease,
  asset: LocalAsset,
  byName: Map<string, RemoteAsset>,
  remote: RemoteAsset[],
  usedTemps: Set<string>,
): Promise<AssetAction> {
  const existing = byName.get(asset.name);
  if (existing) {
    if (existing.size !== asset.size) {
      await ensureHash(asset); // names the temporary upload
      return {
        kind: 'replace',
        name: asset.name,
        reason: `size ${existing.size} ≠ ${asset.size}`,
        remote: existing,
      };
    }
    const [local, sha] = await Promise.all([ensureHash(asset), forge.readBackSha256(release, existing)]);
    if (sha === local) return { kind: 'skip', name: asset.name, reason: 'same size and SHA-256' };
    return { kind: 'replace', name: asset.name, reason: 'SHA-256 differs', remote: existing };
  }
  const temps = remote.filter((r) => parseTempName(r.name)?.name === asset.name && r.size === asset.size);
  for (const temp of temps) {
    const local = await ensureHash(asset);
    if (
      parseTempName(temp.name)!.sha16 === local.slice(0, 16) &&
      (await forge.readBackSha256(release, temp)) === local
    ) {
      usedTemps.add(temp.name);
      return { kind: 'rename', name: asset.name, reason: 'finish an interrupted replacement', remote: temp };
    }
  }
  return { kind: 'upload', name: asset.name, reason: 'missing' };
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
  let remote: RemoteAsset[] = [];
  const sums = wantsSums(prepared);
  if (keep) {
    remote = await forge.listAssets(keep);
    const byName = new Map<string, RemoteAsset>();
    const dupNames: RemoteAsset[] = [];
    for (const a of remote) {
      if (byName.has(a.name)) dupNames.push(a);
      else byName.set(a.name, a);
    }
    const usedTemps = new Set<string>();
    for (const asset of local) actions.push(await assetAction(forge, keep, asset, byName, remote, usedTemps));
    const wanted = new Set(local.map((a) => a.name));
    if (sums) wanted.add(SUMS_NAME);
    for (const a of dupNames)
      actions.push({ kind: 'delete', name: a.name, reason: 'second asset with the same name', remote: a });
    for (const a of remote) {
      if (dupNames.includes(a) || wanted.has(a.name) || usedTemps.has(a.name)) continue;
      if (parseTempName(a.name))
        actions.push({ kind: 'delete', name: a.name, reason: 'leftover temporary upload', remote: a });
      else if (input.prune !== false && !attach)
        actions.push({ kind: 'delete', name: a.name, reason: 'not part of this release', remote: a });
    }
  } else {
    for (const asset of local) actions.push({ kind: 'upload', name: asset.name, reason: 'new release' });
  }

  // SHA256SUMS and the body can be known now only if every hash is (i.e. on a re-run).
  let body: string | undefined;
  if (local.every((a) => a.sha256)) {
    const all = [...local];
    if (sums) {
      const sumsAsset = writeSums(prepared);
      all.push(sumsAsset);
      const existing = remote.find((r) => r.name === SUMS_NAME);
      if (!existing)
        actions.push({ kind: 'upload', name: SUMS_NAME, reason: keep ? 'missing' : 'new release' });
      else if (
        existing.size === sumsAsset.size &&
        keep &&
        (await forge.readBackSha256(keep, existing)) === sumsAsset.sha256
      )
        actions.push({ kind: 'skip', name: SUMS_NAME, reason: 'same size and SHA-256' });
      else actions.push({ kind: 'replace', name: SUMS_NAME, reason: 'checksums changed', remote: existing });
    }
    if (!attach) body = renderBody(prepared, all);
  } else if (sums) {
    const existing = remote.find((r) => r.name === SUMS_NAME);
    actions.push(
      existing
        ? { kind: 'replace', name: SUMS_NAME, reason: 'written after the uploads', remote: existing }
        : { kind: 'upload', name: SUMS_NAME, reason: 'written after the uploads' },
    );
  }
  const assetChanges = actions.filter((a) => a.kind !== 'skip');
  if (keep && !keep.draft && keep.immutable && assetChanges.length)
    throw new SignetError(
      'E_RELEASE_IMMUTABLE',
      `release ${input.tag} is published and immutable; it would need: ${assetChanges.map((a) => `${a.kind} ${a.name}`).join(', ')}`,
      { details: { tag: input.tag, changes: assetChanges.map((a) => ({ kind: a.kind, name: a.name })) } },
    );
  const changes = attach
    ? actions.some((a) => a.kind !== 'skip')
    : !keep ||
      duplicates.length > 0 ||
      actions.some((a) => a.kind !== 'skip') ||
      keep.draft ||
      keep.prerelease !== prerelease ||
      keep.title !== prepared.title ||
      body === undefined ||
      keep.body.trim() !== body.trim();
  return {
    forge: forge.description,
    tag: input.tag,
    version: prepared.version,
    channel: input.channel,
    prerelease,
    title: prepared.title,
    body,
    release: keep ? { action: 'reuse', id: keep.id, draft: keep.draft, url: keep.url } : { action: 'create' },
    duplicates: (attach ? [] : duplicates).map((d) => ({ id: d.id, draft: d.draft })),
    local,
    actions,
    remote,
    changes,
  };
}

/** Uploads under `name`; a conflict left by our own interrupted attempt is cleared and retried once. */
async function uploadFresh(
  forge: Forge,
  release: RemoteRelease,
  asset: LocalAsset,
  name: string,
): Promise<UploadedAsset> {
  const started = Date.now();
  const input = { name, path: asset.path, size: asset.size, contentType: contentTypeFor(asset.name) };
  let uploaded: UploadedAsset;
  try {
    uploaded = await forge.uploadAsset(release, input);
  } catch (e) {
    const status = (e as SignetError).details?.['status'];
    if (status !== 422 && status !== 409) throw e;
    const stale = (await forge.listAssets(release)).find((a) => a.name === name);
    if (stale) {
      logger.warn(`${name}: removing a partial upload left by an earlier attempt`);
      await forge.deleteAsset(release, stale);
    }
    uploaded = await forge.uploadAsset(release, input);
  }
  if (asset.sha256 && uploaded.sentSha256 !== asset.sha256)
    throw new SignetError(
      'E_PUBLISH_GATE',
      `${asset.name} changed after it was verified/hashed (sent ${uploaded.sentSha256}, expected ${asset.sha256}); the release stays a draft`,
    );
  asset.sha256 = uploaded.sentSha256;
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
  const attach = input.mode === 'attach';

  // 1. the release (a draft until the gate passed)
  let release: RemoteRelease;
  const chosen = chooseRelease(await forge.findReleases(input.tag));
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
      body: plan.body ?? '_Release in progress._',
      prerelease,
      draft: true,
      target: input.target,
    });
    logger.info(`created draft release ${input.tag} (${forge.description})`);
    // A lost response may have made the forge create it twice: keep ours, drop the other drafts.
    for (const other of await forge.findReleases(input.tag))
      if (other.id !== release.id && other.draft) await forge.deleteRelease(other);
  }

  // 2. assets: leftovers first (they hold names), then uploads, replacements, renames
  const deleted: string[] = [];
  const done = new Map<string, AssetAction['kind']>();
  const readBack = new Map<number, string>(); // remote asset id → SHA-256 as stored
  const firstDeletes = plan.actions.filter(
    (a): a is Extract<AssetAction, { kind: 'delete' }> =>
      a.kind === 'delete' && a.reason !== 'not part of this release',
  );
  // A published release is changed only after every new byte passed the gate: uploads go under
  // temporary names and are read back first; deletes, renames and pruning wait (`staged`).
  const published = !release.draft;
  const staged: { asset: LocalAsset; tmp: UploadedAsset; old?: RemoteAsset }[] = [];
  // (our own leftover temporaries go first in any case: they hold the names staging uses)
  const deferred = published ? firstDeletes.filter((a) => a.reason !== 'leftover temporary upload') : [];
  for (const a of firstDeletes) {
    if (deferred.includes(a)) continue;
    await forge.deleteAsset(release, a.remote);
    deleted.push(a.name);
  }
  // Read-backs (a download on forges without digests) run in their own small pool, overlapping
  // the uploads that follow instead of stalling them.
  const readBacks: Promise<void>[] = [];
  let readersBusy = 0;
  const waiting: (() => void)[] = [];
  const queueReadBack = (asset: RemoteAsset) => {
    readBacks.push(
      (async () => {
        if (readersBusy >= 2) await new Promise<void>((r) => waiting.push(r));
        readersBusy++;
        try {
          readBack.set(asset.id, await forge.readBackSha256(release, asset));
        } finally {
          readersBusy--;
          waiting.shift()?.();
        }
      })(),
    );
  };
  const place = async (action: AssetAction, asset: LocalAsset): Promise<void> => {
    if (published && (action.kind === 'upload' || action.kind === 'replace')) {
      await ensureHash(asset);
      const tmp = await uploadFresh(forge, release, asset, tempName(asset));
      staged.push({ asset, tmp, ...(action.kind === 'replace' ? { old: action.remote } : {}) });
      queueReadBack(tmp);
    } else if (action.kind === 'upload') {
      queueReadBack(await uploadFresh(forge, release, asset, asset.name));
    } else if (action.kind === 'rename') {
      await forge.renameAsset(release, action.remote, asset.name);
    } else if (action.kind === 'replace') {
      await ensureHash(asset);
      const tmp = await uploadFresh(forge, release, asset, tempName(asset));
      queueReadBack(tmp);
      await forge.deleteAsset(release, action.remote);
      await forge.renameAsset(release, tmp, asset.name);
      logger.info(`replaced ${asset.name} (${action.reason})`);
    }
    done.set(asset.name, action.kind);
  };
  const work = plan.actions.filter(
    (a) => (a.kind === 'upload' || a.kind === 'replace' || a.kind === 'rename') && a.name !== SUMS_NAME,
  );
  let uploadFailure: unknown;
  await mapLimit(work, input.concurrency ?? 2, (action) => place(action, byName.get(action.name)!)).catch(
    (e) => {
      uploadFailure = e;
    },
  );
  // never leave a read-back running (or its failure unobserved)
  const settled = await Promise.allSettled(readBacks);
  if (uploadFailure !== undefined) throw uploadFailure;
  const readFailure = settled.find((x): x is PromiseRejectedResult => x.status === 'rejected');
  if (readFailure) throw readFailure.reason;

  // 3. SHA256SUMS, now that every hash is known
  const all = [...local];
  if (wantsSums(prepared)) {
    for (const a of local) await ensureHash(a);
    const sums = writeSums(prepared);
    all.push(sums);
    const existing = plan.remote.find((r) => r.name === SUMS_NAME && !deleted.includes(r.name));
    let action: AssetAction = { kind: 'upload', name: SUMS_NAME, reason: 'missing' };
    if (existing) {
      const same =
        existing.size === sums.size && (await forge.readBackSha256(release, existing)) === sums.sha256;
      action = same
        ? { kind: 'skip', name: SUMS_NAME, reason: 'same size and SHA-256' }
        : { kind: 'replace', name: SUMS_NAME, reason: 'checksums changed', remote: existing };
    }
    if (action.kind !== 'skip') {
      await place(action, sums);
      await Promise.all(readBacks);
    }
  }

  // 3b. a published release: the staged uploads must be byte for byte the local files before
  // anything on the release changes; then the swaps, leftovers and pruning.
  if (published) {
    await Promise.all(readBacks);
    const bad = staged.filter((x) => readBack.get(x.tmp.id) !== x.asset.sha256);
    if (bad.length) {
      for (const x of staged) await forge.deleteAsset(release, x.tmp).catch(() => undefined);
      throw new SignetError(
        'E_PUBLISH_GATE',
        `verify gate failed for ${input.tag}; the published release stays as it was:\n  - ${bad
          .map((x) => `${x.asset.name}: forge SHA-256 ${readBack.get(x.tmp.id)} ≠ local ${x.asset.sha256}`)
          .sort()
          .join('\n  - ')}`,
        { details: { problems: bad.map((x) => x.asset.name) } },
      );
    }
    for (const x of staged) {
      if (x.old) await forge.deleteAsset(release, x.old);
      await forge.renameAsset(release, x.tmp, x.asset.name);
      logger.info(`${x.old ? 'replaced' : 'added'} ${x.asset.name}`);
    }
    for (const a of deferred) {
      await forge.deleteAsset(release, a.remote);
      deleted.push(a.name);
    }
  }

  // 4. prune what does not belong
  for (const a of plan.actions) {
    if (a.kind !== 'delete' || a.reason !== 'not part of this release') continue;
    logger.info(`deleting asset ${a.name} (${a.reason})`);
    await forge.deleteAsset(release, a.remote);
    deleted.push(a.name);
  }

  // 5. gate: the forge holds exactly these files, byte for byte
  const remote = await forge.listAssets(release);
  const problems: string[] = [];
  const allByName = new Map(all.map((a) => [a.name, a]));
  const counts = new Map<string, number>();
  for (const r of remote) counts.set(r.name, (counts.get(r.name) ?? 0) + 1);
  await mapLimit(all, input.concurrency ?? 2, async (asset) => {
    const r = remote.find((x) => x.name === asset.name);
    if (!r) return void problems.push(`${asset.name}: missing on the forge`);
    if ((counts.get(asset.name) ?? 0) > 1)
      problems.push(`${asset.name}: ${counts.get(asset.name)} assets carry this name`);
    if (r.size !== asset.size)
      return void problems.push(`${asset.name}: forge has ${r.size} bytes, local file ${asset.size}`);
    const sha = readBack.get(r.id) ?? (await forge.readBackSha256(release, r));
    const local = await ensureHash(asset);
    if (sha !== local) problems.push(`${asset.name}: forge SHA-256 ${sha} ≠ local ${local}`);
  });
  if (input.prune !== false && !attach)
    for (const r of remote)
      if (!allByName.has(r.name)) problems.push(`${r.name}: unexpected asset on the forge`);
  if (problems.length)
    throw new SignetError(
      'E_PUBLISH_GATE',
      `verify gate failed for ${input.tag}; the release stays ${attach || !release.draft ? 'as it was' : 'a draft'}:\n  - ${problems.sort().join('\n  - ')}`,
      {
        details: { problems },
      },
    );

  // 6. publish (attach: leave the release as it is)
  const body = renderBody(prepared, all);
  const final = attach
    ? release
    : await forge.updateRelease(release, { title: prepared.title, body, prerelease, draft: false });
  logger.info(
    `${attach ? `attached ${work.length} asset(s) to` : 'published'} ${input.tag}${final.prerelease ? ' (prerelease)' : ''}: ${final.url}`,
  );
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
    assets: all.map((a) => ({
      name: a.name,
      size: a.size,
      sha256: a.sha256,
      action: done.get(a.name) ?? 'kept',
    })),
    deleted,
    signatures,
    unchecked: local
      .filter((a) => a.kind === 'other')
      .map((a) => ({ name: a.name, reason: 'not a signable type' as const })),
    gate: { checked: all.length, signed: signatures.length, passed: true },
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
