/**
 * Sites that arrive through a workflow dispatch carry their enrollment key sealed
 * (`sealedEnrollmentKey`, a libsodium sealed box of a `{siteCode, keyVersion, key}` envelope made
 * by `signet seal --site-code … --key-version …` or `sealEnrollmentKey`). This opens each one with
 * the private key, checks that the envelope names the site and key version it arrived with, and
 * hands the installer builder ordinary site entries. A key in clear in a dispatch is refused:
 * anyone who can read the run can read its inputs. A key sealed for another site, or a bare sealed
 * key, fails the whole dispatch (E_SEAL_SITE_MISMATCH / E_SEAL_FORMAT).
 */
import { type ErrorCode, isSignetError, SignetError } from '../errors.ts';
import { openEnrollmentKey } from './enrollment.ts';

/** The code a dispatch fails with: a replayed key outranks a bare one, which outranks bad input. */
const SEVERITY: ErrorCode[] = ['E_SEAL_SITE_MISMATCH', 'E_SEAL_FORMAT', 'E_SEAL_FAILED'];

export async function openSealedSites(
  entries: unknown,
  privateKey: string | undefined,
): Promise<Record<string, unknown>[]> {
  if (!Array.isArray(entries))
    throw new SignetError('E_INPUT_INVALID', 'sites must be a JSON array of site objects');
  const out: Record<string, unknown>[] = [];
  const problems: string[] = [];
  const codes = new Set<ErrorCode>();
  for (const [i, entry] of entries.entries()) {
    if (!entry || typeof entry !== 'object' || Array.isArray(entry)) {
      problems.push(`sites[${i}]: not an object`);
      continue;
    }
    const { sealedEnrollmentKey, ...rest } = entry as Record<string, unknown>;
    const where = `sites[${i}]${typeof rest['siteCode'] === 'string' ? ` (${rest['siteCode']})` : ''}`;
    if ('enrollmentKey' in rest) {
      problems.push(
        `${where}: enrollmentKey arrived in clear; seal it with \`signet seal\` and send sealedEnrollmentKey`,
      );
      continue;
    }
    if (sealedEnrollmentKey === undefined) {
      if ('enrollmentKeyRef' in rest) out.push(rest);
      else problems.push(`${where}: sealedEnrollmentKey is missing`);
      continue;
    }
    if (typeof sealedEnrollmentKey !== 'string') {
      problems.push(`${where}: sealedEnrollmentKey must be a base64 string`);
      continue;
    }
    if (!privateKey)
      throw new SignetError(
        'E_SECRET_MISSING',
        'sealed enrollment keys need the seal private key (secret SIGNET_SEAL_PRIVATE_KEY)',
      );
    try {
      out.push({ ...rest, enrollmentKey: await openEnrollmentKey(sealedEnrollmentKey, privateKey, rest) });
    } catch (e) {
      if (isSignetError(e)) codes.add(e.code);
      problems.push(`${where}: ${(e as Error).message}`);
    }
  }
  if (problems.length)
    throw new SignetError(
      SEVERITY.find((c) => codes.has(c)) ?? 'E_INPUT_INVALID',
      `cannot use the dispatched sites:\n  - ${problems.join('\n  - ')}`,
      { details: { problems } },
    );
  return out;
}
