import { describe, expect, it } from 'vitest';
import { parseConfig } from '../config/load.ts';
import { createSigner, resolveProfile, timestampPlan } from './index.ts';

const config = parseConfig(
  {
    signing: {
      defaultProfile: 'release',
      profiles: {
        release: {
          backend: 'osslsigncode',
          cert: 'keys/chain.pem',
          key: 'keys/leaf.key',
          password: 'env:PASS',
          timestamp: { urls: ['http://tsa.one/', 'http://tsa.two/'], retries: 1 },
          verify: { caFile: 'keys/ca.pem', leafSha256: ['a'.repeat(64)] },
        },
        hsm: {
          backend: 'osslsigncode',
          pkcs11: {
            module: '/usr/lib/softhsm/libsofthsm2.so',
            cert: 'pkcs11:object=c;type=cert',
            key: 'pkcs11:object=k;type=private',
            pin: 'env:PIN',
          },
          timestamp: false,
          verify: { subject: '/CN=Example HSM signer' },
        },
        dev: { backend: 'osslsigncode', cert: 'c', key: 'k', dev: true, timestamp: { urls: [] } },
      },
    },
  },
  't',
);

describe('signing profiles: selection, overrides, paths', () => {
  it('resolves relative paths against the config directory and keeps pkcs11: URIs', () => {
    const p = resolveProfile(config, { baseDir: '/repo', env: {} });
    expect(p).toMatchObject({
      name: 'release',
      cert: '/repo/keys/chain.pem',
      key: '/repo/keys/leaf.key',
      verify: { caFile: '/repo/keys/ca.pem' },
    });
    const h = resolveProfile(config, { profile: 'hsm', baseDir: '/repo', env: {} });
    expect(h.backend === 'osslsigncode' && h.pkcs11?.key).toBe('pkcs11:object=k;type=private');
  });
  it('picks the profile from options, then SIGNET_SIGNING_PROFILE, then defaultProfile; unknown names list the known ones', () => {
    expect(resolveProfile(config, { env: { SIGNET_SIGNING_PROFILE: 'hsm' } }).name).toBe('hsm');
    expect(resolveProfile(config, { profile: 'dev', env: { SIGNET_SIGNING_PROFILE: 'hsm' } }).name).toBe(
      'dev',
    );
    expect(() => resolveProfile(config, { profile: 'nope', env: {} })).toThrow(
      /"nope" is not defined \(known: release, hsm, dev\)/,
    );
  });
  it('flags and env override the TSA list, pins and digest without touching the config', () => {
    const p = resolveProfile(config, {
      env: { SIGNET_TSA_URLS: 'http://a/, http://b/' },
      overrides: { leafSha256: ['b'.repeat(64)], digest: 'sha384' },
    });
    expect(p.timestamp).toMatchObject({ urls: ['http://a/', 'http://b/'], retries: 1 });
    expect(p.verify.leafSha256).toEqual(['b'.repeat(64)]);
    expect(p.digest).toBe('sha384');
    expect(
      resolveProfile(config, { env: {}, overrides: { tsaUrls: ['http://c/'] } }).timestamp,
    ).toMatchObject({ urls: ['http://c/'] });
    expect(resolveProfile(config, { env: {}, overrides: { noTimestamp: true } }).timestamp).toBe(false);
    expect(config.signing.profiles['release']?.timestamp).toMatchObject({
      urls: ['http://tsa.one/', 'http://tsa.two/'],
    });
  });
  it('release path: TSAs required unless timestamp: false; dev profiles, --no-timestamp and fallbacks refused', () => {
    expect(timestampPlan(resolveProfile(config, { env: {} }), true)?.urls).toHaveLength(2);
    expect(timestampPlan(resolveProfile(config, { profile: 'hsm', env: {} }), true)).toBeUndefined();
    expect(() => timestampPlan(resolveProfile(config, { profile: 'dev', env: {} }), true)).toThrow(
      /no timestamp authority/,
    );
    expect(timestampPlan(resolveProfile(config, { profile: 'dev', env: {} }), false)).toBeUndefined();
    expect(() => createSigner(config, { profile: 'dev', releasePath: true })).toThrow(/dev profile/);
    expect(() => createSigner(config, { releasePath: true, overrides: { noTimestamp: true } })).toThrow(
      /--no-timestamp/,
    );
    expect(() =>
      createSigner(config, { profile: 'hsm', releasePath: true, overrides: { noTimestamp: true } }),
    ).not.toThrow();
  });
  it('release path: a profile that pins no signer (leaf SHA-256 or exact subject) is refused, naming the fields', () => {
    const unpinned = parseConfig(
      {
        signing: {
          profiles: { rel: { backend: 'osslsigncode', cert: 'c', key: 'k', verify: { caFile: 'ca.pem' } } },
        },
      },
      't',
    );
    expect(() => createSigner(unpinned, { profile: 'rel', releasePath: true })).toThrow(
      expect.objectContaining({
        code: 'E_VERIFY_PIN_REQUIRED',
        message: expect.stringContaining(
          'signing.profiles.rel.verify.leafSha256 or signing.profiles.rel.verify.subject',
        ),
      }),
    );
    expect(() => createSigner(unpinned, { profile: 'rel' })).not.toThrow();
    expect(() =>
      createSigner(unpinned, {
        profile: 'rel',
        releasePath: true,
        overrides: { leafSha256: ['c'.repeat(64)] },
      }),
    ).not.toThrow();
    expect(() =>
      createSigner(unpinned, { profile: 'rel', releasePath: true, overrides: { subject: '/CN=X' } }),
    ).not.toThrow();
  });
});
