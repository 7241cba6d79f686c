import { chmodSync, copyFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildPe } from '../../../test/helpers/pe.ts';
import { makeTestPki, type TestPki } from '../../../test/helpers/pki.ts';
import { tempDir } from '../../../test/helpers/tmp.ts';
import { parseConfig } from '../config/load.ts';
import type { SignetError } from '../errors.ts';
import { clearSecrets } from '../redact.ts';
import { createSigner } from './index.ts';
import { type JsignSettings, jsignArgs } from './jsign.ts';

const base = { jar: '/opt/jsign/jsign.jar', digest: 'sha256' } as const;
const ts = {
  urls: ['http://timestamp.acs.microsoft.com', 'http://timestamp.digicert.com'],
  retries: 3,
  retryWaitMs: 10_000,
};

describe('jsign argv per storetype (pure, per jsign documentation)', () => {
  it('TRUSTEDSIGNING: endpoint host, account/profile alias, token as env:, RFC3161 TSA list with retries', () => {
    const s: JsignSettings = {
      ...base,
      storetype: 'TRUSTEDSIGNING',
      endpoint: 'https://weu.codesigning.azure.net/',
      account: 'acme',
      certificateProfile: 'acme-public',
      storepass: 'env:AZURE_ACCESS_TOKEN',
      timestamp: ts,
    };
    expect(jsignArgs(s, '/w/agent.exe', { name: 'Acme Agent' })).toEqual([
      '-jar',
      '/opt/jsign/jsign.jar',
      '--storetype',
      'TRUSTEDSIGNING',
      '--keystore',
      'weu.codesigning.azure.net',
      '--alias',
      'acme/acme-public',
      '--storepass',
      'env:AZURE_ACCESS_TOKEN',
      '--alg',
      'SHA-256',
      '--tsaurl',
      'http://timestamp.acs.microsoft.com,http://timestamp.digicert.com',
      '--tsmode',
      'RFC3161',
      '--tsretries',
      '3',
      '--tsretrywait',
      '10',
      '--name',
      'Acme Agent',
      '/w/agent.exe',
    ]);
    expect(() => jsignArgs({ ...s, storepass: undefined } as JsignSettings, 'x')).toThrow(/storepass/);
    expect(() => jsignArgs({ ...s, account: undefined } as JsignSettings, 'x')).toThrow(/account/);
  });
  it('AZUREKEYVAULT: vault + certificate alias + access token', () => {
    expect(
      jsignArgs(
        {
          ...base,
          storetype: 'AZUREKEYVAULT',
          keystore: 'acme-vault',
          alias: 'codesign',
          storepass: 'env:AZ_TOKEN',
        },
        'f.msi',
      ),
    ).toEqual([
      '-jar',
      '/opt/jsign/jsign.jar',
      '--storetype',
      'AZUREKEYVAULT',
      '--keystore',
      'acme-vault',
      '--alias',
      'codesign',
      '--storepass',
      'env:AZ_TOKEN',
      '--alg',
      'SHA-256',
      'f.msi',
    ]);
  });
  it('AWS: region + key id + certfile; credentials as file:', () => {
    expect(
      jsignArgs(
        {
          ...base,
          storetype: 'AWS',
          keystore: 'eu-west-1',
          alias: 'arn:aws:kms:eu-west-1:1:key/k',
          storepass: 'file:/run/secrets/aws',
          certfile: '/c/chain.pem',
          digest: 'sha384',
        },
        'f.exe',
      ),
    ).toEqual([
      '-jar',
      '/opt/jsign/jsign.jar',
      '--storetype',
      'AWS',
      '--keystore',
      'eu-west-1',
      '--alias',
      'arn:aws:kms:eu-west-1:1:key/k',
      '--storepass',
      'file:/run/secrets/aws',
      '--certfile',
      '/c/chain.pem',
      '--alg',
      'SHA-384',
      'f.exe',
    ]);
    expect(() => jsignArgs({ ...base, storetype: 'AWS', keystore: 'eu-west-1', alias: 'k' }, 'f')).toThrow(
      /certfile/,
    );
  });
  it('GOOGLECLOUD: key ring + key + certfile + token', () => {
    expect(
      jsignArgs(
        {
          ...base,
          storetype: 'GOOGLECLOUD',
          keystore: 'projects/p/locations/global/keyRings/r',
          alias: 'k/cryptoKeyVersions/1',
          storepass: 'env:GCLOUD_TOKEN',
          certfile: 'c.pem',
        },
        'f.exe',
      ),
    ).toEqual([
      '-jar',
      '/opt/jsign/jsign.jar',
      '--storetype',
      'GOOGLECLOUD',
      '--keystore',
      'projects/p/locations/global/keyRings/r',
      '--alias',
      'k/cryptoKeyVersions/1',
      '--storepass',
      'env:GCLOUD_TOKEN',
      '--certfile',
      'c.pem',
      '--alg',
      'SHA-256',
      'f.exe',
    ]);
  });
  it('PKCS11, YUBIKEY, PKCS12, JKS', () => {
    expect(
      jsignArgs(
        { ...base, storetype: 'PKCS11', keystore: '/etc/pkcs11.cfg', alias: 'k', storepass: 'env:PIN' },
        'f',
      ),
    ).toEqual([
      '-jar',
      '/opt/jsign/jsign.jar',
      '--storetype',
      'PKCS11',
      '--keystore',
      '/etc/pkcs11.cfg',
      '--alias',
      'k',
      '--storepass',
      'env:PIN',
      '--alg',
      'SHA-256',
      'f',
    ]);
    expect(jsignArgs({ ...base, storetype: 'YUBIKEY', storepass: 'env:PIN' }, 'f')).toEqual([
      '-jar',
      '/opt/jsign/jsign.jar',
      '--storetype',
      'YUBIKEY',
      '--storepass',
      'env:PIN',
      '--alg',
      'SHA-256',
      'f',
    ]);
    expect(
      jsignArgs(
        {
          ...base,
          storetype: 'PKCS12',
          keystore: 'k.p12',
          alias: 'a',
          storepass: 'file:/s/p',
          keypass: 'env:KP',
          tsmode: 'AUTHENTICODE',
          timestamp: { urls: ['http://t'], retries: 0, retryWaitMs: 500 },
        },
        'f',
      ),
    ).toEqual([
      '-jar',
      '/opt/jsign/jsign.jar',
      '--storetype',
      'PKCS12',
      '--keystore',
      'k.p12',
      '--alias',
      'a',
      '--storepass',
      'file:/s/p',
      '--keypass',
      'env:KP',
      '--alg',
      'SHA-256',
      '--tsaurl',
      'http://t',
      '--tsmode',
      'AUTHENTICODE',
      '--tsretries',
      '0',
      '--tsretrywait',
      '1',
      'f',
    ]);
    expect(() => jsignArgs({ ...base, storetype: 'JKS', alias: 'a' }, 'f')).toThrow(/keystore/);
  });
  it('the config refuses a literal secret', () => {
    expect(() =>
      parseConfig(
        {
          signing: {
            profiles: {
              r: {
                backend: 'jsign',
                jar: 'j',
                storetype: 'JKS',
                keystore: 'k',
                alias: 'a',
                storepass: 'hunter22',
              },
            },
          },
        },
        't',
      ),
    ).toThrow(/env:NAME or file:PATH/);
  });
});

describe('jsign backend around a stand-in for the jar (jsign cannot be installed here)', () => {
  let pki: TestPki;
  let dir: string;
  let fakeJava: string;
  let log: string;
  beforeAll(async () => {
    dir = tempDir('signet-jsign-');
    pki = await makeTestPki();
    log = join(dir, 'java.log');
    fakeJava = join(dir, 'java');
    // Behaves like `java -jar jsign.jar … FILE`: signs FILE in place with the test key.
    writeFileSync(
      fakeJava,
      `#!/bin/sh\nfor a; do f="$a"; done\nprintf '%s\\n' "$*" >> '${log}'\nosslsigncode sign -certs '${pki.cert}' -key '${pki.key}' -in "$f" -out "$f.tmp" >/dev/null 2>&1 || exit 3\nmv "$f.tmp" "$f"\n`,
    );
    chmodSync(fakeJava, 0o755);
    process.env['SIGNET_TEST_AZ_TOKEN'] = 'canary-az-token-77';
  });
  afterAll(() => {
    delete process.env['SIGNET_TEST_AZ_TOKEN'];
    clearSecrets();
  });

  it('copies, runs jsign on the copy, verifies, and never puts the token on argv', async () => {
    const config = parseConfig(
      {
        signing: {
          profiles: {
            release: {
              backend: 'jsign',
              java: fakeJava,
              jar: '/opt/jsign.jar',
              storetype: 'TRUSTEDSIGNING',
              endpoint: 'weu.codesigning.azure.net',
              account: 'acme',
              certificateProfile: 'pub',
              storepass: 'env:SIGNET_TEST_AZ_TOKEN',
              timestamp: false,
              verify: { caFile: pki.caCert, leafSha256: [pki.leafSha256] },
            },
          },
        },
      },
      't',
    );
    const file = join(dir, 'a.exe');
    await buildPe(file);
    const a = await createSigner(config).sign(file);
    expect(a.signature.leafSha256).toBe(pki.leafSha256);
    const argv = readFileSync(log, 'utf8');
    expect(argv).toContain('--storepass env:SIGNET_TEST_AZ_TOKEN');
    expect(argv).not.toContain('canary-az-token-77');
    delete process.env['SIGNET_TEST_AZ_TOKEN'];
    const other = join(dir, 'b.exe');
    copyFileSync(join(dir, 'a.exe'), other);
    try {
      await createSigner(config).sign(join(dir, 'c.exe'));
    } catch (e) {
      expect((e as SignetError).code).toBe('E_FILE_NOT_FOUND');
    }
    await buildPe(join(dir, 'd.exe'));
    try {
      await createSigner(config).sign(join(dir, 'd.exe'));
      expect.unreachable();
    } catch (e) {
      expect((e as SignetError).code).toBe('E_SECRET_MISSING');
    }
  });
});
