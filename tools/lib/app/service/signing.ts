/**
 * `POST /v1/sign`: a PE or MSI in, the same file signed, timestamped and verified under the
 * service's profile out — the signing-server role (Signet's `remote` backend speaks this
 * protocol). The unsigned input is never returned: any failure is a coded error.
 */
import { closeSync, mkdtempSync, openSync, readSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { SignetError } from '../../errors.ts';
import { type Deps, record } from './deps.ts';
import { receive } from './releases.ts';
import type { Actor } from './types.ts';

/** PE (MZ) or Compound File (MSI) by content; the extension the signer needs. */
function kindOf(file: string): 'exe' | 'msi' | undefined {
  const fd = openSync(file, 'r');
  try {
    const head = Buffer.alloc(8);
    const n = readSync(fd, head, 0, 8, 0);
    if (n >= 2 && head[0] === 0x4d && head[1] === 0x5a) return 'exe';
    if (n === 8 && head.equals(Buffer.from([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]))) return 'msi';
    return undefined;
  } finally {
    closeSync(fd);
  }
}

export async function signUpload(
  d: Deps,
  actor: Actor,
  input: { fileName: string; body: Readable; nest?: boolean },
): Promise<{ path: string; sha256: string; size: number; cleanup(): void }> {
  const dir = mkdtempSync(join(d.workDir, 'sign-'));
  const cleanup = () => rmSync(dir, { recursive: true, force: true });
  try {
    const raw = join(dir, 'input');
    const size = await receive(input.body, raw, d.service.maxUploadBytes);
    if (!size) throw new SignetError('E_INPUT_INVALID', 'the body is empty: send the PE or MSI to sign');
    const kind = kindOf(raw);
    if (!kind)
      throw new SignetError('E_SIGN_UNSUPPORTED', 'not a PE (.exe/.dll) or an MSI: only those are signed', {
        details: { size },
      });
    const safe = input.fileName.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 100) || 'file';
    const name =
      safe.toLowerCase().endsWith(`.${kind}`) || (kind === 'exe' && /\.dll$/i.test(safe))
        ? safe
        : `${safe}.${kind}`;
    const unsigned = join(dir, name);
    const { renameSync } = await import('node:fs');
    renameSync(raw, unsigned);
    const out = join(dir, `signed-${name}`);
    const signed = await d.signer.sign(unsigned, {
      out,
      description: input.fileName.slice(0, 100) || name,
      ...(input.nest ? { nest: true } : {}),
    });
    await record(d, actor, 'sign', 'ok', null, `${name} ${signed.sha256}`);
    return { path: signed.path, sha256: signed.sha256, size: statSync(signed.path).size, cleanup };
  } catch (e) {
    cleanup();
    await record(
      d,
      actor,
      'sign',
      `refused: ${(e as SignetError).code ?? 'error'}`,
      null,
      input.fileName.slice(0, 100),
    );
    throw e;
  }
}
