/**
 * The test PKI: a dev CA with a code-signing leaf and a TSA certificate (from `makeDevCert`), a
 * second unrelated "wrong" CA with its own leaf of the same shape, the leaf key encrypted with a
 * password (PEM) and as PKCS#12. Every test that signs uses this.
 */
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultRunner } from '../../tools/lib/exec/runner.ts';
import { type DevCert, makeDevCert } from '../../tools/lib/sign/devcert.ts';
import { tempDir } from './tmp.ts';

export interface TestPki extends DevCert {
  /** A second, unrelated CA + leaf ("wrong" signer). */
  wrong: DevCert;
  /** The leaf key encrypted with `password` (PEM, AES-256). */
  encryptedKey: string;
  /** Leaf key + chain as PKCS#12 protected by `password`. */
  pkcs12: string;
  /** The password of encryptedKey / pkcs12: a canary that must never appear in any output. */
  password: string;
  /** A file holding the password (0600). */
  passwordFile: string;
}

export const PKI_PASSWORD = 'canary-pki-P4ssw0rd-7f3a91';

export async function makeTestPki(dir = tempDir('signet-pki-')): Promise<TestPki> {
  const [main, wrong] = await Promise.all([
    makeDevCert(join(dir, 'main')),
    makeDevCert(join(dir, 'wrong'), { name: 'Signet WRONG' }),
  ]);
  const passwordFile = join(dir, 'password.txt');
  writeFileSync(passwordFile, PKI_PASSWORD, { mode: 0o600 });
  chmodSync(passwordFile, 0o600);
  const encryptedKey = join(dir, 'leaf.enc.key');
  const pkcs12 = join(dir, 'leaf.p12');
  const pass = `file:${passwordFile}`;
  await defaultRunner.run('openssl', [
    'pkey',
    '-in',
    main.key,
    '-aes256',
    '-passout',
    pass,
    '-out',
    encryptedKey,
  ]);
  await defaultRunner.run('openssl', [
    'pkcs12',
    '-export',
    '-inkey',
    main.key,
    '-in',
    main.leafCert,
    '-certfile',
    main.caCert,
    '-passout',
    pass,
    '-out',
    pkcs12,
  ]);
  return { ...main, wrong, encryptedKey, pkcs12, password: PKI_PASSWORD, passwordFile };
}
