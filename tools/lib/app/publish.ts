/**
 * The publishing use case, shared by the CLI, the publish action and a vendor's server: resolve
 * the target, open the forge, wire the signing layer's verify as the gate, read the notes, then
 * plan and apply.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { artifactKind } from '../artifact.ts';
import type { SignetConfig } from '../config/schema.ts';
import { SignetError } from '../errors.ts';
import { checkChannel, expandFiles } from '../forge/assets.ts';
import type { RetryOptions } from '../forge/http.ts';
import { openForge, resolveForgeTarget } from '../forge/index.ts';
import type { Channel } from '../forge/notes.ts';
import { type PublishInput, type PublishOutcome, publishRelease } from '../forge/publish.ts';
import { signableKind } from '../sign/content-kind.ts';

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

/** The kind the gate verifies as, by content (PE, Compound File), else by name. */
function signableKindOf(path: string) {
  try {
    const kind = signableKind(path);
    return kind !== 'other' ? kind : artifactKind(path);
  } catch {
    return artifactKind(path);
  }
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
