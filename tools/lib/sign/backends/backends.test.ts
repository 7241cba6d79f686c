/**
 * The backend seam: a backend is one object. A test-only backend, registered here, signs through
 * createSigner/signFiles, appears in doctor, and is validated, without any change to sign/index.ts.
 */
import { copyFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildPe } from '../../../../test/helpers/pe.ts';
import { makeTestPki, type TestPki } from '../../../../test/helpers/pki.ts';
import { tempDir } from '../../../../test/helpers/tmp.ts';
import { parseConfig } from '../../config/load.ts';
import type { SignetConfig } from '../../config/schema.ts';
import { runDoctor } from '../doctor.ts';
import { createSigner, registerBackend, signFiles } from '../index.ts';
import { osslSignArgs } from '../osslsigncode.ts';
import { type BaseProfile, backendNames, builtinBackends, type SigningBackend } from './index.ts';

interface KmsProfile extends BaseProfile {
  backend: 'test-kms';
  keyId: string;
}

let pki: TestPki;
let dir: string;
let agent: string;
const calls: string[] = [];

/** A pretend cloud KMS: the "key id" names a key pair of the test PKI; osslsigncode does the math. */
const testKms: SigningBackend<KmsProfile> = {
  name: 'test-kms',
  parse(raw) {
    const r = raw as Partial<KmsProfile>;
    if (!r.keyId) throw new Error('keyId is required');
    return {
      backend: 'test-kms',
      keyId: r.keyId,
      dev: r.dev ?? false,
      digest: r.digest ?? 'sha256',
      timestamp: r.timestamp ?? false,
      verify: r.verify ?? { leafSha256: [] },
      timeoutMs: r.timeoutMs ?? 30_000,
      ...(r.description ? { description: r.description } : {}),
    };
  },
  resolvePaths: () => undefined,
  create(p, ctx) {
    calls.push(`create ${p.name}`);
    return {
      prepare: () => void calls.push('prepare'),
      produce: async (input) => {
        calls.push(`produce ${input.description} ts=${ctx.timestamp() ? 'yes' : 'no'}`);
        await ctx.runner.run(
          'osslsigncode',
          osslSignArgs({
            certs: pki.cert,
            key: pki.key,
            digest: p.digest,
            input: input.input,
            output: input.output,
          }),
          { outputs: [input.output], timeoutMs: p.timeoutMs, label: 'test-kms' },
        );
      },
    };
  },
  files: (p) => [{ field: 'keyId', value: join(dir, `${p.keyId}.missing`), code: 'E_SIGN_KEY_MISSING' }],
  secrets: () => [],
  doctor: (p) => ({ files: [{ name: `kms key (${p.name})`, purpose: 'test', path: join(dir, p.keyId) }] }),
};

function config(profile: Record<string, unknown>): SignetConfig {
  const c = parseConfig({ signing: { defaultProfile: 'kms' } }, 'test');
  c.signing.profiles['kms'] = profile as never; // a backend the config schema does not know
  return c;
}

beforeAll(async () => {
  dir = tempDir('signet-backend-');
  pki = await makeTestPki();
  agent = await buildPe(join(dir, 'agent-src.exe'));
});
let restore: (() => void) | undefined;
afterAll(() => restore?.());

describe('signing backends', () => {
  it('the built-ins are registered by name', () => {
    expect(Object.keys(builtinBackends)).toEqual(['osslsigncode', 'jsign', 'remote']);
    expect(backendNames()).toEqual(expect.arrayContaining(['osslsigncode', 'jsign', 'remote']));
  });

  it('an unregistered backend is E_CONFIG_INVALID', () => {
    expect(() => createSigner(config({ backend: 'test-kms', keyId: 'k1' }))).toThrow(
      expect.objectContaining({ code: 'E_CONFIG_INVALID' }),
    );
  });

  it('a new backend is one registered object: it signs, verifies, batches and shows in doctor', async () => {
    restore = registerBackend(testKms);
    const profile = {
      backend: 'test-kms',
      keyId: 'k1',
      description: 'Agent',
      verify: { caFile: pki.caCert, leafSha256: [pki.leafSha256] },
    };
    const signer = createSigner(config(profile));
    const file = join(dir, 'a.exe');
    copyFileSync(agent, file);
    const a = await signer.sign(file);
    expect(a.signature.leafSha256).toBe(pki.leafSha256);
    expect(calls).toEqual(['create kms', 'prepare', 'produce Agent ts=no']);
    expect((await signer.verify(file)).sha256).toBe(a.sha256);

    const more = [join(dir, 'b.exe'), join(dir, 'c.exe')];
    for (const m of more) copyFileSync(agent, m);
    const batch = await signFiles(signer, more, { concurrency: 2 });
    expect(batch).toMatchObject({ ok: true, signed: 2, failed: 0 });

    // the release path rules are shared: no pin → refused; no fallback for a backend without one
    expect(() => createSigner(config({ ...profile, verify: {} }), { releasePath: true })).toThrow(
      expect.objectContaining({ code: 'E_VERIFY_PIN_REQUIRED' }),
    );
    expect(() => createSigner(config(profile), { overrides: { allowUnsignedFallback: true } })).toThrow(
      expect.objectContaining({ code: 'E_USAGE' }),
    );

    const doctor = await runDoctor(config(profile));
    expect(doctor.checks.find((c) => c.name === 'kms key (kms)')).toMatchObject({
      ok: false,
      required: true,
    });
    expect(existsSync(join(dir, '.signet-sign-a.exe'))).toBe(false);
  });
});
