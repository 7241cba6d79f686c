/**
 * A SoftHSM2 token for PKCS#11 signing tests: a private token directory (SOFTHSM2_CONF points at
 * it), the test leaf key and certificate imported with pkcs11-tool. Setup-only secrets (SO PIN,
 * user PIN) are passed to the setup tools; Signet itself reads the PIN from the environment.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultRunner } from '../../tools/lib/exec/runner.ts';
import type { DevCert } from '../../tools/lib/sign/devcert.ts';

export const SOFTHSM_MODULE = '/usr/lib/softhsm/libsofthsm2.so';
export const PKCS11_ENGINE = '/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so';

export interface SoftHsmToken {
  conf: string;
  label: string;
  pin: string;
  module: string;
  certUri: string;
  keyUri: string;
}

export function softHsmAvailable(): boolean {
  return existsSync(SOFTHSM_MODULE) && existsSync(PKCS11_ENGINE);
}

export async function makeSoftHsmToken(
  dir: string,
  pki: Pick<DevCert, 'key' | 'leafCert'>,
  pin: string,
): Promise<SoftHsmToken> {
  const tokens = join(dir, 'tokens');
  mkdirSync(tokens, { recursive: true });
  const conf = join(dir, 'softhsm2.conf');
  writeFileSync(conf, `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\n`);
  const env = { SOFTHSM2_CONF: conf };
  const label = 'signet-test';
  const run = (file: string, args: string[]) => defaultRunner.run(file, args, { env, timeoutMs: 60_000 });
  await run('softhsm2-util', [
    '--init-token',
    '--free',
    '--label',
    label,
    '--so-pin',
    '12345678',
    '--pin',
    pin,
  ]);
  const keyDer = join(dir, 'key.p8.der');
  const certDer = join(dir, 'cert.der');
  await run('openssl', ['pkcs8', '-topk8', '-nocrypt', '-in', pki.key, '-outform', 'DER', '-out', keyDer]);
  await run('openssl', ['x509', '-in', pki.leafCert, '-outform', 'DER', '-out', certDer]);
  const p11 = ['--module', SOFTHSM_MODULE, '--token-label', label, '--login', '--pin', pin];
  await run('pkcs11-tool', [
    ...p11,
    '--write-object',
    keyDer,
    '--type',
    'privkey',
    '--label',
    'signet-key',
    '--id',
    '01',
  ]);
  await run('pkcs11-tool', [
    ...p11,
    '--write-object',
    certDer,
    '--type',
    'cert',
    '--label',
    'signet-cert',
    '--id',
    '01',
  ]);
  return {
    conf,
    label,
    pin,
    module: SOFTHSM_MODULE,
    certUri: `pkcs11:token=${label};object=signet-cert;type=cert`,
    keyUri: `pkcs11:token=${label};object=signet-key;type=private`,
  };
}
