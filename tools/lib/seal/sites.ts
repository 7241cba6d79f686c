/**
 * Sites that arrive through a workflow dispatch carry their enrollment key sealed
 * (`sealedEnrollmentKey`, a libsodium sealed box made by `signet seal`). This opens each one with
 * the private key and hands the installer builder ordinary site entries. A key in clear in a
 * dispatch is refused: anyone who can read the run can read its inputs.
 */
import { SignetError } from '../errors.ts';
import { unseal } from './index.ts';

export async function openSealedSites(
  entries: unknown,
  privateKey: string | undefined,
): Promise<Record<string, unknown>[]> {
  if (!Array.isArray(entries))
    throw new SignetError('E_INPUT_INVALID', 'sites must be a JSON array of site objects');
  const out: Record<string, unknown>[] = [];
  const problems: string[] = [];
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
      out.push({ ...rest, enrollmentKey: await unseal(sealedEnrollmentKey, privateKey) });
    } catch (e) {
      problems.push(`${where}: ${(e as Error).message}`);
    }
  }
  if (problems.length)
    throw new SignetError(
      'E_INPUT_INVALID',
      `cannot use the dispatched sites:\n  - ${problems.join('\n  - ')}`,
      { details: { problems } },
    );
  return out;
}
