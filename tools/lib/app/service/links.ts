/**
 * Download links a technician sends to a customer: an unguessable token in the URL (only its
 * SHA-256 is stored), bound to one site, kind, channel (or version) and key version. A link stops
 * working when it expires or when the site's key rotates; every download through one is audited.
 */
import { SignetError } from '../../errors.ts';
import { LINK_PREFIX, newId, newToken, tokenHash } from '../../service-store/secrets.ts';
import type { Channel, LinkRecord, OutputKind } from '../../service-store/types.ts';
import { type Deps, iso, record } from './deps.ts';
import { type InstallerBuilder, installerFor } from './installers.ts';
import { resolveRelease } from './releases.ts';
import { requireSite } from './sites.ts';
import type { Actor, InstallerFile, LinkView } from './types.ts';

export const MAX_LINK_MS = 30 * 24 * 3600 * 1000;

export async function createLink(
  d: Deps,
  actor: Actor,
  siteCode: string,
  input: { kind: OutputKind; channel?: Channel; version?: string; expiresInMs: number },
): Promise<LinkView> {
  const site = await requireSite(d, siteCode);
  const channel = input.channel ?? 'stable';
  if (!Number.isInteger(input.expiresInMs) || input.expiresInMs < 60_000 || input.expiresInMs > MAX_LINK_MS)
    throw new SignetError('E_INPUT_INVALID', 'expiresIn: between 1 minute and 30 days', {
      details: { field: 'expiresIn' },
    });
  // a link to a release that does not exist would only fail later, at the customer
  await resolveRelease(d, channel, input.version);
  const token = newToken(LINK_PREFIX);
  const now = d.clock();
  const rec: LinkRecord = {
    id: newId('lnk'),
    hash: tokenHash(token),
    siteCode,
    kind: input.kind,
    channel,
    version: input.version ?? null,
    keyVersion: site.keyVersion,
    createdBy: actor.name,
    createdAt: now,
    expiresAt: now + input.expiresInMs,
    revokedAt: null,
  };
  await d.store.insertLink(rec);
  await record(d, actor, 'link.create', 'ok', siteCode, `${rec.id} ${rec.kind} ${channel}`);
  return {
    id: rec.id,
    url: `${d.publicUrl.replace(/\/+$/, '')}/dl/${token}`,
    siteCode,
    kind: rec.kind,
    channel,
    version: rec.version,
    keyVersion: rec.keyVersion,
    expiresAt: iso(rec.expiresAt)!,
  };
}

export async function installerByLink(
  d: Deps,
  builder: InstallerBuilder,
  linkToken: string,
  ip: string,
): Promise<InstallerFile> {
  const link = linkToken.startsWith(LINK_PREFIX) ? await d.store.linkByHash(tokenHash(linkToken)) : undefined;
  const actor: Actor = { kind: 'link', name: link?.id ?? '-', ip, scopes: [] };
  const refuse = async (why: string) => {
    await record(d, actor, 'link.download', `refused: ${why}`, link?.siteCode ?? null);
    return why === 'expired'
      ? new SignetError('E_LINK_EXPIRED', 'this download link expired', { details: { reason: why } })
      : new SignetError('E_LINK_INVALID', `this download link is not valid (${why})`, {
          details: { reason: why },
        });
  };
  if (!link) throw await refuse('unknown');
  if (link.revokedAt !== null) throw await refuse('revoked');
  if (link.expiresAt <= d.clock()) throw await refuse('expired');
  const site = await d.store.site(link.siteCode);
  if (!site) throw await refuse('site deleted');
  // a site deleted and made again after the link is another site, whatever its key version
  if (site.createdAt > link.createdAt) throw await refuse('site replaced');
  if (site.keyVersion !== link.keyVersion) throw await refuse('site key rotated');
  const file = await installerFor(d, builder, {
    siteCode: link.siteCode,
    kind: link.kind,
    channel: link.channel,
    ...(link.version ? { version: link.version } : {}),
  });
  // a rotation between the check above and the build: the link never serves another key
  if (file.keyVersion !== link.keyVersion) throw await refuse('site key rotated');
  await record(d, actor, 'link.download', 'ok', link.siteCode, `${file.fileName} ${file.sha256}`);
  return file;
}
