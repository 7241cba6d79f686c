/**
 * A sealed enrollment key is bound to its site: the box holds a small JSON envelope
 * `{"format":"signet.enrollment-key/1","siteCode":…,"keyVersion":…,"key":…}`, not the bare key.
 * Opening it checks the envelope against the site it arrived with, so a sealed key copied from one
 * dispatch (dispatch inputs are readable by anyone who can read the run) cannot be replayed under
 * another site or another key version. A bare sealed value (the format before the envelope) is
 * refused: nothing in it says which site it belongs to.
 */
import { SignetError } from '../errors.ts';
import { registerSecret } from '../redact.ts';
import { seal, unseal } from './index.ts';

export const ENROLLMENT_KEY_FORMAT = 'signet.enrollment-key/1';

export interface EnrollmentKeyBinding {
  siteCode: string;
  keyVersion: number;
}

export interface EnrollmentKeyEnvelope extends EnrollmentKeyBinding {
  key: string;
}

function checkBinding(b: { siteCode?: unknown; keyVersion?: unknown }, what: string): EnrollmentKeyBinding {
  const problems: string[] = [];
  if (typeof b.siteCode !== 'string' || b.siteCode.length === 0 || b.siteCode.length > 64)
    problems.push(`${what}.siteCode must be a site code (1–64 characters)`);
  const version =
    typeof b.keyVersion === 'string' && /^\d+$/.test(b.keyVersion) ? Number(b.keyVersion) : b.keyVersion;
  if (typeof version !== 'number' || !Number.isInteger(version) || version < 1 || version > 1_000_000)
    problems.push(`${what}.keyVersion must be an integer from 1 to 1000000`);
  if (problems.length)
    throw new SignetError('E_INPUT_INVALID', problems.join('; '), { details: { problems } });
  return { siteCode: b.siteCode as string, keyVersion: version as number };
}

/** Seals `{siteCode, keyVersion, key}` to the repository's public key (what the vendor's server calls). */
export async function sealEnrollmentKey(
  envelope: EnrollmentKeyEnvelope,
  publicKeyB64: string,
): Promise<string> {
  const { siteCode, keyVersion } = checkBinding(envelope, 'envelope');
  if (typeof envelope.key !== 'string' || envelope.key.length === 0)
    throw new SignetError('E_INPUT_INVALID', 'envelope.key must be a non-empty string (the enrollment key)');
  registerSecret(envelope.key);
  const text = JSON.stringify({ format: ENROLLMENT_KEY_FORMAT, siteCode, keyVersion, key: envelope.key });
  return seal(text, publicKeyB64);
}

/** True when an opened value is an enrollment-key envelope (e.g. to refuse one used as a token). */
export function isEnrollmentEnvelope(opened: string): boolean {
  if (!opened.startsWith('{')) return false;
  try {
    return (JSON.parse(opened) as { format?: unknown }).format === ENROLLMENT_KEY_FORMAT;
  } catch {
    return false;
  }
}

/**
 * Opens a sealed enrollment key and returns the key, after checking that the envelope names the
 * `expected` site and key version. Errors name the site, never the key (it is registered with the
 * redactor as soon as it is opened).
 */
export async function openEnrollmentKey(
  sealedB64: string,
  privateKeyB64: string,
  expected: { siteCode?: unknown; keyVersion?: unknown },
): Promise<string> {
  const want = checkBinding(expected, 'site');
  const opened = await unseal(sealedB64, privateKeyB64);
  let doc: Record<string, unknown> | undefined;
  if (opened.startsWith('{')) {
    try {
      const parsed: unknown = JSON.parse(opened);
      if (parsed && typeof parsed === 'object' && !Array.isArray(parsed))
        doc = parsed as Record<string, unknown>;
    } catch {
      doc = undefined;
    }
  }
  if (!doc || doc['format'] !== ENROLLMENT_KEY_FORMAT)
    throw new SignetError(
      'E_SEAL_FORMAT',
      `the sealed enrollment key of site ${want.siteCode} is not a ${ENROLLMENT_KEY_FORMAT} envelope (a bare sealed key names no site)`,
      { details: { siteCode: want.siteCode } },
    );
  const key = doc['key'];
  if (typeof key !== 'string' || key.length === 0)
    throw new SignetError('E_SEAL_FORMAT', `the sealed envelope of site ${want.siteCode} holds no key`, {
      details: { siteCode: want.siteCode },
    });
  registerSecret(key);
  const sealedSite = doc['siteCode'];
  const sealedVersion = doc['keyVersion'];
  if (sealedSite !== want.siteCode || sealedVersion !== want.keyVersion)
    throw new SignetError(
      'E_SEAL_SITE_MISMATCH',
      `the sealed enrollment key sent for site ${want.siteCode} (key version ${want.keyVersion}) was sealed for site ${JSON.stringify(
        typeof sealedSite === 'string' ? sealedSite.slice(0, 64) : sealedSite,
      )} (key version ${JSON.stringify(sealedVersion)}); refusing to use it`,
      {
        details: {
          siteCode: want.siteCode,
          keyVersion: want.keyVersion,
          sealedFor: { siteCode: sealedSite, keyVersion: sealedVersion },
        },
      },
    );
  return key;
}
