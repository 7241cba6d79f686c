/**
 * The signer identity in every site's cache key: a rotated key or certificate file rebuilds, for
 * osslsigncode's cert/key/pkcs12 and for jsign's certfile and PKCS12/JKS keystore alike.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../../../test/helpers/tmp.ts';
import { parseConfig } from '../config/load.ts';
import type { Signer } from '../sign/types.ts';
import { defaultSignerIdentity } from './cache.ts';

describe('signer identity', () => {
  it('changes with the content of every key and certificate file a profile names, not with unrelated files', () => {
    const dir = tempDir();
    const file = (name: string, text: string) => writeFileSync(join(dir, name), text);
    file('ks.p12', 'keystore one');
    file('chain.pem', 'chain one');
    file('leaf.pem', 'cert one');
    file('leaf.key', 'key one');
    const config = parseConfig(
      {
        signing: {
          defaultProfile: 'jks',
          profiles: {
            jks: {
              backend: 'jsign',
              jar: 'jsign.jar',
              storetype: 'PKCS12',
              keystore: 'ks.p12',
              certfile: 'chain.pem',
              storepass: 'env:STOREPASS',
            },
            azure: {
              backend: 'jsign',
              jar: 'jsign.jar',
              storetype: 'TRUSTEDSIGNING',
              endpoint: 'weu.codesigning.azure.net',
              account: 'acct',
              certificateProfile: 'prof',
            },
            pem: { backend: 'osslsigncode', cert: 'leaf.pem', key: 'leaf.key' },
          },
        },
      },
      'test',
    );
    const id = (profile: string) => defaultSignerIdentity(config, { profile, dev: false } as Signer, dir);
    const jks = id('jks');
    const pem = id('pem');
    const azure = id('azure');
    file('ks.p12', 'keystore two');
    expect(id('jks')).not.toBe(jks);
    file('ks.p12', 'keystore one');
    expect(id('jks')).toBe(jks);
    file('chain.pem', 'chain two');
    expect(id('jks')).not.toBe(jks);
    file('leaf.key', 'key two');
    expect(id('pem')).not.toBe(pem);
    file('leaf.pem', 'cert two');
    // a Trusted Signing keystore is an endpoint name, not a file: nothing here changes it
    expect(id('azure')).toBe(azure);
  });
});
