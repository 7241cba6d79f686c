import { copyFileSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CanaryScanner, RecordingRunner } from '../../../test/helpers/canary.ts';
import { buildPe } from '../../../test/helpers/pe.ts';
import { makeTestPki, type TestPki } from '../../../test/helpers/pki.ts';
import { makeSoftHsmToken, type SoftHsmToken } from '../../../test/helpers/softhsm.ts';
import { tempDir } from '../../../test/helpers/tmp.ts';
import { parseConfig } from '../config/load.ts';
import type { SignetError } from '../errors.ts';
import { clearSecrets } from '../redact.ts';
import { createSigner } from './index.ts';

const PIN = 'canary-pin-9137';
let pki: TestPki;
let token: SoftHsmToken;
let dir: string;
let agent: string;
const savedConf = process.env['SOFTHSM2_CONF'];

function profile(pinEnv: string) {
  return parseConfig(
    {
      signing: {
        profiles: {
          release: {
            backend: 'osslsigncode',
            pkcs11: { module: token.module, cert: token.certUri, key: token.keyUri, pin: `env:${pinEnv}` },
            timestamp: false,
            verify: { caFile: pki.caCert, leafSha256: [pki.leafSha256] },
          },
        },
      },
    },
    'test',
  );
}

beforeAll(async () => {
  dir = tempDir('signet-p11-');
  pki = await makeTestPki();
  token = await makeSoftHsmToken(join(dir, 'hsm'), pki, PIN);
  agent = await buildPe(join(dir, 'agent.exe'));
  process.env['SOFTHSM2_CONF'] = token.conf;
});
afterAll(() => {
  if (savedConf === undefined) delete process.env['SOFTHSM2_CONF'];
  else process.env['SOFTHSM2_CONF'] = savedConf;
  delete process.env['SIGNET_TEST_PIN'];
  delete process.env['SIGNET_TEST_BADPIN'];
  clearSecrets();
});

describe('PKCS#11 (SoftHSM2 through the OpenSSL pkcs11 engine)', () => {
  it('signs with the token key, PIN from env via -readpass; a wrong PIN is E_SIGN_BAD_SECRET; the PIN never leaks', async () => {
    const scan = new CanaryScanner([PIN, 'canary-badpin-4242']);
    const runner = new RecordingRunner();
    const out = tempDir('signet-p11-out-');
    try {
      process.env['SIGNET_TEST_PIN'] = PIN;
      const file = join(out, 'a.exe');
      copyFileSync(agent, file);
      const a = await createSigner(profile('SIGNET_TEST_PIN'), { runner }).sign(file);
      expect(a.signature.leafSha256).toBe(pki.leafSha256);
      expect(runner.calls.find((c) => c.args[0] === 'sign')?.args).toContain('-pkcs11module');

      process.env['SIGNET_TEST_BADPIN'] = 'canary-badpin-4242';
      const file2 = join(out, 'b.exe');
      copyFileSync(agent, file2);
      const before = readFileSync(file2);
      try {
        await createSigner(profile('SIGNET_TEST_BADPIN'), { runner }).sign(file2);
        expect.unreachable();
      } catch (e) {
        expect((e as SignetError).code).toBe('E_SIGN_BAD_SECRET');
        scan.seen((e as Error).message, (e as SignetError).toJSON());
      }
      expect(readFileSync(file2).equals(before)).toBe(true);
      delete process.env['SIGNET_TEST_PIN'];
      try {
        await createSigner(profile('SIGNET_TEST_PIN'), { runner }).sign(file2);
        expect.unreachable();
      } catch (e) {
        expect((e as SignetError).code).toBe('E_SECRET_MISSING');
      }
      expect(existsSync(join(out, 'b.exe'))).toBe(true);
      scan.assertClean(runner, [out]);
    } finally {
      scan.restore();
    }
  });
});
