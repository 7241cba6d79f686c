/**
 * Sites: the fields of docs/installers.md plus a write-only enrollment key, kept encrypted. A new
 * key comes with keyVersion + 1 (rotation); the same keyVersion with the same key (or none) is an
 * update of the labels; anything else is refused with 409.
 */
import { SignetError } from '../../errors.ts';
import { fingerprint } from '../../installers/fingerprint.ts';
import { type SiteConfig, validateSite } from '../../installers/site.ts';
import type { Page, SiteRecord } from '../../service-store/types.ts';
import { type Deps, iso, record } from './deps.ts';
import type { Actor, SiteInput, SiteView } from './types.ts';
import { emit } from './webhooks.ts';

const FIELDS = ['serverUrl', 'company', 'siteName', 'department', 'deviceType', 'tags'] as const;

export function viewOf(s: SiteRecord): SiteView {
  const f = s.fields as Record<string, unknown>;
  return {
    siteCode: s.siteCode,
    serverUrl: String(f['serverUrl'] ?? ''),
    company: String(f['company'] ?? ''),
    siteName: String(f['siteName'] ?? ''),
    department: String(f['department'] ?? ''),
    deviceType: String(f['deviceType'] ?? ''),
    tags: Array.isArray(f['tags']) ? (f['tags'] as string[]) : [],
    keyVersion: s.keyVersion,
    fingerprint: s.fingerprint,
    createdAt: iso(s.createdAt)!,
    updatedAt: iso(s.updatedAt)!,
  };
}

/** The site as the installer builder takes it (key decrypted). */
export async function siteConfigOf(d: Deps, s: SiteRecord): Promise<SiteConfig> {
  const v = viewOf(s);
  return {
    siteCode: v.siteCode,
    serverUrl: v.serverUrl,
    company: v.company,
    siteName: v.siteName,
    department: v.department,
    deviceType: v.deviceType,
    tags: v.tags,
    keyVersion: v.keyVersion,
    enrollmentKey: await d.keys.open(s.keyCiphertext),
  };
}

export async function requireSite(d: Deps, siteCode: string): Promise<SiteRecord> {
  const s = await d.store.site(siteCode);
  if (!s) throw new SignetError('E_NOT_FOUND', `no site ${siteCode}`, { details: { siteCode } });
  return s;
}

export async function putSite(
  d: Deps,
  actor: Actor,
  siteCode: string,
  input: SiteInput,
): Promise<{ site: SiteView; created: boolean; rotated: boolean }> {
  const existing = await d.store.site(siteCode);
  const version = input.keyVersion;
  let key = input.enrollmentKey;
  let rotated = false;
  if (existing) {
    const stored = await d.keys.open(existing.keyCiphertext);
    if (version < existing.keyVersion)
      throw new SignetError(
        'E_KEY_VERSION',
        `keyVersion ${version} is older than the site's ${existing.keyVersion}`,
        {
          details: { siteCode, keyVersion: existing.keyVersion },
        },
      );
    if (version === existing.keyVersion) {
      if (key !== undefined && key !== stored)
        throw new SignetError(
          'E_KEY_VERSION',
          `a new enrollment key needs keyVersion ${existing.keyVersion + 1}`,
          {
            details: { siteCode, keyVersion: existing.keyVersion },
          },
        );
      key = stored;
    } else if (version === existing.keyVersion + 1) {
      if (key === undefined)
        throw new SignetError('E_KEY_VERSION', `keyVersion ${version} needs the new enrollmentKey`, {
          details: { siteCode, keyVersion: existing.keyVersion },
        });
      if (key === stored)
        throw new SignetError('E_KEY_VERSION', 'a rotation needs a new enrollment key, not the current one', {
          details: { siteCode, keyVersion: existing.keyVersion },
        });
      rotated = true;
    } else
      throw new SignetError(
        'E_KEY_VERSION',
        `keyVersion ${version} skips versions (the site has ${existing.keyVersion})`,
        {
          details: { siteCode, keyVersion: existing.keyVersion },
        },
      );
  } else if (key === undefined)
    throw new SignetError('E_INPUT_INVALID', 'a new site needs its enrollmentKey', {
      details: { field: 'enrollmentKey' },
    });

  // Validate with the installer's own rules (never an enrollmentKeyRef: a caller must not make
  // the service read its environment or files).
  const raw: Record<string, unknown> = { siteCode, keyVersion: version, enrollmentKey: key };
  for (const f of FIELDS) if (input[f] !== undefined) raw[f] = input[f];
  const checked = validateSite(raw, 'site', { dev: d.signer.dev });
  if (!checked.site) {
    const lines = checked.problems.map((p) => `${p.path.replace(/^site\./, '')}: ${p.message}`);
    throw new SignetError('E_INPUT_INVALID', `invalid site: ${lines.join('; ')}`, {
      details: {
        problems: checked.problems.map((p) => ({
          field: p.path.replace(/^site\.?/, ''),
          message: p.message,
        })),
      },
    });
  }
  const site = checked.site;
  const now = d.clock();
  const fields: Record<string, unknown> = {};
  for (const f of FIELDS) fields[f] = site[f];
  const rec: SiteRecord = {
    siteCode,
    fields,
    keyVersion: version,
    keyCiphertext: rotated || !existing ? await d.keys.seal(site.enrollmentKey) : existing.keyCiphertext,
    fingerprint: fingerprint(site.enrollmentKey, version).text,
    createdAt: existing?.createdAt ?? now,
    updatedAt: now,
  };
  // the site and its audit entry together: a crash never keeps a rotation without its record
  const written = await d.store.putSiteAudited(
    rec,
    {
      at: now,
      actorKind: actor.kind,
      actor: actor.name,
      ip: actor.ip,
      action: existing ? (rotated ? 'site.rotate' : 'site.update') : 'site.create',
      siteCode,
      result: 'ok',
      detail: rec.fingerprint,
    },
    existing ?? null,
  );
  if (!written)
    throw new SignetError('E_CONFLICT', `site ${siteCode} changed while this request was handled`, {
      hint: 'Read the site again (GET) and retry with the key version it has now.',
      details: { siteCode },
    });

  if (rotated)
    await emit(d, 'site.key_rotated', { siteCode, keyVersion: version, fingerprint: rec.fingerprint });
  return { site: viewOf(rec), created: !existing, rotated };
}

export async function getSite(d: Deps, siteCode: string): Promise<SiteView> {
  return viewOf(await requireSite(d, siteCode));
}

export async function listSites(d: Deps, cursor: string | null, limit: number): Promise<Page<SiteView>> {
  const page = await d.store.listSites(cursor, Math.min(Math.max(limit, 1), 500));
  return { items: page.items.map(viewOf), next: page.next };
}

export async function deleteSite(d: Deps, actor: Actor, siteCode: string): Promise<void> {
  await requireSite(d, siteCode);
  await d.store.deleteSite(siteCode);
  await d.store.revokeLinks(siteCode, d.clock());
  for (const o of await d.store.outputsOfSite(siteCode)) await d.store.deleteOutput(o.key);
  await record(d, actor, 'site.delete', 'ok', siteCode);
}
