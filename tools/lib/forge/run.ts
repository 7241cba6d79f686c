/**
 * The one publishing entry point for the CLI and the actions: resolve the target, open the forge,
 * wire the signing layer's verify as the gate, read the notes, then plan and apply.
 */
import { execFileSync } from 'node:child_process';
import { globSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { artifactKind } from '../artifact.ts';
import type { SignetConfig } from '../config/schema.ts';
import { SignetError } from '../errors.ts';
import { signableKind } from '../sign/content-kind.ts';
import type { RetryOptions } from './http.ts';
import { openForge, resolveForgeTarget } from './index.ts';
import type { Channel } from './notes.ts';
import { type PublishInput, type PublishOutcome, publishRelease } from './publish.ts';

export interface RunPublishOptions {
  config: SignetConfig;
  /** Absolute path of the config file (relative profile paths resolve against its folder). */
  configPath?: string | undefined;
  cwd: string;
  /** dir:PATH | github | gitea | auto */
  to?: string | undefined;
  repository?: string | undefined;
  apiUrl?: string | undefined;
  /** env:NAME or file:PATH */
  token?: string | undefined;
  tag: string;
  channel: Channel;
  title?: string | undefined;
  notes?: string | undefined;
  notesFile?: string | undefined;
  /** Paths or glob patterns, relative to cwd. */
  files: readonly string[];
  /** Signing profile whose trust settings verify .exe/.msi/.dll assets. */
  profile?: string | undefined;
  allowDevSignatures?: boolean | undefined;
  /** Publish per-site installers (files carrying a site.json) instead of refusing them. */
  allowSiteInstallers?: boolean | undefined;
  prune?: boolean | undefined;
  concurrency?: number | undefined;
  target?: string | undefined;
  dryRun?: boolean | undefined;
  /** attach: add assets to an existing release without touching its body, state or other assets. */
  mode?: 'release' | 'attach' | undefined;
  env?: NodeJS.ProcessEnv | undefined;
  retry?: Partial<RetryOptions> | undefined;
}

export interface FetchAssetOptions {
  config: SignetConfig;
  cwd: string;
  to?: string | undefined;
  repository?: string | undefined;
  apiUrl?: string | undefined;
  token?: string | undefined;
  tag: string;
  name: string;
  dest: string;
  env?: NodeJS.ProcessEnv | undefined;
}

/** Downloads one asset of a published release (streamed, hashed); returns its path and SHA-256. */
function signableKindOf(path: string) {
  try {
    const kind = signableKind(path);
    return kind !== 'other' ? kind : artifactKind(path);
  } catch {
    return artifactKind(path);
  }
}

export async function fetchReleaseAsset(
  o: FetchAssetOptions,
): Promise<{ path: string; sha256: string; size: number }> {
  const target = await resolveForgeTarget({
    to: o.to,
    repository: o.repository,
    apiUrl: o.apiUrl,
    token: o.token,
    config: o.config.publish,
    cwd: o.cwd,
    env: o.env,
  });
  const forge = openForge(target, { env: o.env, timeouts: o.config.publish.timeouts });
  const release = (await forge.findReleases(o.tag)).find((r) => !r.draft);
  if (!release)
    throw new SignetError('E_FORGE_NOT_FOUND', `no published release ${o.tag} on ${forge.description}`);
  const asset = (await forge.listAssets(release)).find((a) => a.name === o.name);
  if (!asset)
    throw new SignetError('E_FORGE_NOT_FOUND', `release ${o.tag} has no asset ${o.name}`, {
      hint: 'Check the asset name (case-sensitive).',
    });
  const path = resolve(o.cwd, o.dest);
  const got = await forge.download(release, asset, path);
  if (got.size !== asset.size)
    throw new SignetError(
      'E_FORGE_FAILED',
      `download of ${o.name} was truncated (${got.size} of ${asset.size} bytes)`,
    );
  return { path, ...got };
}

/** Expands glob patterns (sorted, files only); a pattern that matches nothing is an error. */
export function expandFiles(patterns: readonly string[], cwd: string): string[] {
  const out: string[] = [];
  const missing: string[] = [];
  for (const pattern of patterns) {
    if (!/[*?[{]/.test(pattern)) {
      out.push(isAbsolute(pattern) ? pattern : resolve(cwd, pattern));
      continue;
    }
    const matches = globSync(pattern, { cwd })
      .map((m) => resolve(cwd, m))
      .sort();
    if (!matches.length) missing.push(pattern);
    out.push(...matches);
  }
  if (missing.length)
    throw new SignetError(
      'E_FILE_NOT_FOUND',
      `no file matches ${missing.map((m) => JSON.stringify(m)).join(', ')}`,
      {
        details: { patterns: missing },
      },
    );
  return [...new Set(out)];
}

export function checkChannel(tag: string, channel: Channel): void {
  const pre = /\d+\.\d+\.\d+-[0-9A-Za-z.-]+/.test(tag);
  if (channel === 'stable' && pre)
    throw new SignetError('E_INPUT_INVALID', `${tag} is a prerelease tag; publish it with --channel beta`);
  if (channel === 'beta' && !pre)
    throw new SignetError(
      'E_INPUT_INVALID',
      `${tag} is a stable tag; a beta release needs a prerelease tag such as 1.2.0-beta.1`,
    );
}

export async function runPublish(o: RunPublishOptions): Promise<PublishOutcome> {
  if (o.mode !== 'attach') checkChannel(o.tag, o.channel);
  const files = expandFiles(o.files, o.cwd);
  const target = await resolveForgeTarget({
    to: o.to,
    repository: o.repository,
    apiUrl: o.apiUrl,
    token: o.token,
    config: o.config.publish,
    cwd: o.cwd,
    env: o.env,
  });
  const forge = openForge(target, { env: o.env, retry: o.retry, timeouts: o.config.publish.timeouts });
  let notes = o.notes;
  if (o.notesFile) {
    try {
      notes = readFileSync(resolve(o.cwd, o.notesFile), 'utf8');
    } catch {
      throw new SignetError('E_FILE_NOT_FOUND', `notes file not found: ${o.notesFile}`);
    }
  }
  let verify: PublishInput['verify'];
  // by content, as the gate decides: a PE named .sys or .cab needs the verifier too
  if (files.some((f) => signableKindOf(f) !== 'other') && Object.keys(o.config.signing.profiles).length) {
    const { createSigner } = await import('../sign/index.ts');
    const signer = createSigner(o.config, {
      ...(o.profile ? { profile: o.profile } : {}),
      // A stable release on a forge is the release path: timestamps required, dev profiles refused.
      releasePath:
        o.channel === 'stable' && target.kind !== 'dir' && o.mode !== 'attach' && !o.allowDevSignatures,
      baseDir: o.configPath ? dirname(o.configPath) : o.cwd,
      ...(o.env ? { env: o.env } : {}),
    });
    verify = (path) => signer.verify(path);
  }
  const templatesDir = o.config.publish.notesTemplates
    ? resolve(o.configPath ? dirname(o.configPath) : o.cwd, o.config.publish.notesTemplates)
    : undefined;
  // Pin the tag's commit when it exists locally: a forge that does not know the tag yet would
  // otherwise create it on the default branch's head.
  let tagCommit = o.target;
  if (!tagCommit && forge.kind !== 'dir') {
    try {
      tagCommit =
        execFileSync('git', ['rev-parse', '--verify', '--quiet', `refs/tags/${o.tag}^{commit}`], {
          cwd: o.cwd,
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'ignore'],
        }).trim() || undefined;
    } catch {
      tagCommit = undefined;
    }
  }
  return publishRelease(
    forge,
    {
      tag: o.tag,
      channel: o.channel,
      title: o.title,
      notes,
      files,
      target: tagCommit,
      templatesDir,
      cwd: o.cwd,
      prune: o.prune ?? o.config.publish.prune,
      checksumsAsset: o.config.publish.checksums,
      verify,
      allowDevSignatures: o.allowDevSignatures,
      allowSiteInstallers: o.allowSiteInstallers,
      concurrency: o.concurrency ?? o.config.publish.concurrency,
      mode: o.mode,
    },
    { dryRun: o.dryRun },
  );
}
