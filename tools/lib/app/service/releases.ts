/**
 * Agent releases: an upload is stored privately, verified with the service's signing profile
 * (chain, pins, timestamp policy) — anything else is refused with the signing layer's coded error —
 * and only then kept as a content-addressed blob. The newest verified release of a channel is its
 * current one.
 */
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import semver from 'semver';
import { SignetError } from '../../errors.ts';
import { newId } from '../../service-store/secrets.ts';
import type { Channel, ReleaseRecord } from '../../service-store/types.ts';
import { type Deps, iso, record } from './deps.ts';
import type { Actor, ReleaseView } from './types.ts';
import { emit } from './webhooks.ts';

export function releaseView(r: ReleaseRecord, current: Set<string>): ReleaseView {
  return {
    id: r.id,
    version: r.version,
    channel: r.channel,
    agentSha256: r.agentSha256,
    agentSize: r.agentSize,
    signer: { subject: r.signerSubject, leafSha256: r.signerLeafSha256 },
    timestamp: r.timestamp,
    createdAt: iso(r.createdAt)!,
    current: current.has(r.id),
  };
}

async function currentIds(d: Deps): Promise<Set<string>> {
  const ids = new Set<string>();
  for (const c of ['stable', 'beta'] as const) {
    const r = await d.store.currentRelease(c);
    if (r) ids.add(r.id);
  }
  return ids;
}

/** Copies a request body to a private file, refusing more than `limit` bytes. */
export async function receive(body: Readable, file: string, limit: number): Promise<number> {
  let size = 0;
  body.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size > limit)
      body.destroy(new SignetError('E_TOO_LARGE', `the body is over ${limit} bytes`, { details: { limit } }));
  });
  await pipeline(body, createWriteStream(file, { mode: 0o600 }));
  return size;
}

export async function uploadRelease(
  d: Deps,
  actor: Actor,
  input: { version: string; channel: Channel; body: Readable },
): Promise<ReleaseView> {
  if (!semver.valid(input.version) || input.version.startsWith('v'))
    throw new SignetError(
      'E_INPUT_INVALID',
      `version: expected x.y.z or x.y.z-pre.N, got ${JSON.stringify(input.version)}`,
      {
        details: { field: 'version' },
      },
    );
  if (input.channel !== 'stable' && input.channel !== 'beta')
    throw new SignetError('E_INPUT_INVALID', 'channel: expected stable or beta', {
      details: { field: 'channel' },
    });
  if (input.channel === 'stable' && semver.prerelease(input.version))
    throw new SignetError(
      'E_INPUT_INVALID',
      `version ${input.version} is a prerelease: upload it to the beta channel`,
      {
        details: { field: 'channel' },
      },
    );
  const dir = mkdtempSync(join(d.workDir, 'release-'));
  try {
    const file = join(dir, 'agent.exe');
    await receive(input.body, file, d.service.maxUploadBytes);
    let signed: Awaited<ReturnType<Deps['signer']['verify']>>;
    try {
      signed = await d.signer.verify(file);
    } catch (e) {
      await record(
        d,
        actor,
        'release.upload',
        `refused: ${(e as SignetError).code ?? 'error'}`,
        null,
        input.version,
      );
      throw e;
    }
    const existing = await d.store.releaseByVersion(input.version, input.channel);
    if (existing) {
      if (existing.agentSha256 === signed.sha256) return releaseView(existing, await currentIds(d));
      throw new SignetError(
        'E_CONFLICT',
        `release ${input.version} (${input.channel}) exists with another agent`,
        {
          hint: 'A version is immutable: release the new agent under a new version.',
        },
      );
    }
    const blob = await d.blobs.adopt(file);
    if (blob.sha256 !== signed.sha256)
      throw new SignetError('E_VERIFY_FAILED', 'the agent changed between verification and storage');
    const rec: ReleaseRecord = {
      id: newId('rel'),
      version: input.version,
      channel: input.channel,
      agentSha256: blob.sha256,
      agentSize: blob.size,
      signerSubject: signed.signature.subject,
      signerLeafSha256: signed.signature.leafSha256,
      timestamp: signed.signature.timestamp ?? null,
      createdAt: d.clock(),
    };
    await d.store.insertRelease(rec);
    await record(d, actor, 'release.upload', 'ok', null, `${rec.version} ${rec.channel}`);
    await emit(d, 'release.created', {
      version: rec.version,
      channel: rec.channel,
      agentSha256: rec.agentSha256,
    });
    return releaseView(rec, await currentIds(d));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function listReleases(d: Deps): Promise<ReleaseView[]> {
  const current = await currentIds(d);
  return (await d.store.listReleases()).map((r) => releaseView(r, current));
}

/** The release an installer request means: the given version, or the channel's current one. */
export async function resolveRelease(d: Deps, channel: Channel, version?: string): Promise<ReleaseRecord> {
  const r = version
    ? await d.store.releaseByVersion(version, channel)
    : await d.store.currentRelease(channel);
  if (!r)
    throw new SignetError(
      'E_NO_RELEASE',
      version
        ? `no verified release ${version} on the ${channel} channel`
        : `no verified release on the ${channel} channel yet`,
      { details: { channel, ...(version ? { version } : {}) } },
    );
  return r;
}
