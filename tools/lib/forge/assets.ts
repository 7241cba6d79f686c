/**
 * Release assets as the publishing use case and the site-installers action need them: file
 * patterns expanded, one asset of a published release fetched, a tag checked against its channel.
 */
import { globSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import type { SignetConfig } from '../config/schema.ts';
import { SignetError } from '../errors.ts';
import { openForge, resolveForgeTarget } from './index.ts';
import type { Channel } from './notes.ts';

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
