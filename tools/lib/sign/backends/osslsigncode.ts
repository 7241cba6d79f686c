/**
 * The osslsigncode backend: a PEM key + chain, a PKCS#12 file, or a PKCS#11 token. Key files
 * given as env:/file: references are written to private temporary files for the run.
 */
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { SignetError } from '../../errors.ts';
import type { Runner } from '../../exec/runner.ts';
import { parseSecretRef, resolveSecret, type SecretRef } from '../../secrets.ts';
import { osslsigncodeProfileSchema } from '../config.ts';
import { absMaterial, KeyMaterials, type Material, type MaterialSpec } from '../key-material.ts';
import { type OsslKeySpec, osslProduce } from '../osslsigncode.ts';
import { withSecretFile } from '../secret-file.ts';
import { type LoadedKey, TemplateSigner } from '../template-signer.ts';
import type { ProfileFile, ProfileOf, SigningBackend } from './types.ts';

type Profile = ProfileOf<'osslsigncode'>;

function osslKeys(p: Profile): OsslKeySpec {
  if (p.pkcs11) {
    return {
      pkcs11: {
        module: p.pkcs11.module,
        cert: p.pkcs11.cert,
        key: p.pkcs11.key,
        ...(p.pkcs11.engine ? { engine: p.pkcs11.engine } : {}),
      },
      ...(p.cert ? { certs: p.cert } : {}),
    };
  }
  if (p.pkcs12) return { pkcs12: p.pkcs12 };
  if (!p.cert || !p.key) {
    throw new SignetError(
      'E_SIGN_KEY_MISSING',
      `profile "${p.name}": osslsigncode needs cert + key, pkcs12, or pkcs11`,
      { details: { profile: p.name } },
    );
  }
  return { certs: p.cert, key: p.key };
}

/** A PEM or DER private key (PKCS#8, PKCS#1 or SEC1; encrypted with `passphrase`) in memory. */
export function parsePrivateKey(bytes: Buffer, passphrase: string | undefined): KeyObject {
  const pass = passphrase === undefined ? {} : { passphrase };
  if (bytes.includes('-----BEGIN'))
    // PEM, with any text before it (a pkcs12 export's Bag Attributes)
    return createPrivateKey({ key: bytes, format: 'pem', ...pass });
  let last: unknown;
  for (const type of ['pkcs8', 'pkcs1', 'sec1'] as const) {
    try {
      return createPrivateKey({ key: bytes, format: 'der', type, ...pass });
    } catch (e) {
      last = e;
    }
  }
  throw last;
}

/** The private key of a PKCS#12 file, read by `openssl pkcs12` into memory (never onto disk). */
async function pkcs12Key(runner: Runner, path: string, passphrase: string | undefined): Promise<KeyObject> {
  const run = (passin: string) =>
    runner.run('openssl', ['pkcs12', '-in', path, '-nocerts', '-nodes', '-passin', passin], {
      binary: true,
      input: '',
      timeoutMs: 30_000,
      label: 'openssl pkcs12 -nocerts',
    });
  const r =
    passphrase === undefined
      ? await run('pass:')
      : await withSecretFile(passphrase, (file) => run(`file:${file}`));
  return createPrivateKey({ key: Buffer.from(r.stdoutBytes ?? []), format: 'pem' });
}

export const osslsigncodeBackend: SigningBackend<Profile> = {
  name: 'osslsigncode',
  parse: (raw) => osslsigncodeProfileSchema.parse(raw),
  resolvePaths(p, base) {
    for (const k of ['cert', 'key', 'pkcs12'] as const) {
      const v = absMaterial(base, p[k]);
      if (v) p[k] = v;
    }
    if (p.pkcs11 && !p.pkcs11.module.startsWith('pkcs11:') && !isAbsolute(p.pkcs11.module))
      p.pkcs11 = { ...p.pkcs11, module: resolve(base, p.pkcs11.module) };
  },
  osslsigncode: (p) => p.osslsigncode,
  create(p, ctx) {
    const keys = osslKeys(p);
    const field = (k: string) => `signing.profiles.${p.name}.${k}`;
    const spec = (k: string, value: string | undefined, kind: MaterialSpec['kind']) =>
      value === undefined ? undefined : { field: field(k), value, kind };
    // key files from env:/file: references: resolved once before the first file is touched
    const materials = new KeyMaterials(
      {
        certs: spec('cert', keys.certs, 'certs'),
        key: spec('key', keys.key, 'key'),
        pkcs12: spec('pkcs12', keys.pkcs12, 'pkcs12'),
      },
      ctx.env,
    );
    const password = (p.pkcs11?.pin ?? p.password) as SecretRef | undefined;
    const pathOf = (m: Material | undefined) => (m && 'path' in m ? [m.path] : []);
    const templates = new TemplateSigner({
      digest: p.digest,
      url: p.productUrl,
      env: ctx.env,
      files: () => {
        const m = materials.resolve();
        return [...pathOf(m.certs), ...pathOf(m.key), ...pathOf(m.pkcs12)];
      },
      loadKey: async (): Promise<LoadedKey> => {
        if (p.pkcs11) return { refused: 'a PKCS#11 key signs inside its token' };
        const m = materials.resolve();
        const secret = password
          ? resolveSecret(parseSecretRef(password, field('password')), field('password'), ctx.env)
          : undefined;
        if (m.key)
          return { key: parsePrivateKey('bytes' in m.key ? m.key.bytes : readFileSync(m.key.path), secret) };
        if (m.pkcs12)
          return { key: await materials.use((paths) => pkcs12Key(ctx.runner, paths.pkcs12!, secret)) };
        return { refused: 'no key file' };
      },
    });
    return {
      prepare: () => void materials.resolve(),
      produce: async (input) => {
        const plan = ctx.timestamp();
        if (await templates.sign(input, plan)) return;
        await materials.use((paths) =>
          osslProduce(
            {
              program: p.osslsigncode,
              runner: ctx.runner,
              timeoutMs: p.timeoutMs,
              digest: p.digest,
              keys: { ...keys, ...paths },
              ...(p.productUrl ? { url: p.productUrl } : {}),
              ...(password ? { password: parseSecretRef(password, field('password')) } : {}),
              ...(plan ? { timestamp: plan } : {}),
            },
            input,
          ),
        );
        await templates.learn(input);
      },
    };
  },
  files(p) {
    const out: ProfileFile[] = [];
    if (!p.pkcs11) {
      if (p.cert) out.push({ field: 'cert', value: p.cert, code: 'E_SIGN_KEY_MISSING', material: 'certs' });
      if (p.key) out.push({ field: 'key', value: p.key, code: 'E_SIGN_KEY_MISSING', material: 'key' });
    }
    if (p.pkcs12)
      out.push({ field: 'pkcs12', value: p.pkcs12, code: 'E_SIGN_KEY_MISSING', material: 'pkcs12' });
    if (p.pkcs11) out.push({ field: 'pkcs11.module', value: p.pkcs11.module, code: 'E_TOOL_MISSING' });
    return out;
  },
  secrets: (p) => [
    ['password', p.password],
    ['pkcs11.pin', p.pkcs11?.pin],
  ],
  doctor: (p) =>
    p.pkcs11
      ? {
          requires: ['pkcs11 engine'],
          files: [
            {
              name: `pkcs11 module (${p.name})`,
              purpose: `PKCS#11 module of profile "${p.name}"`,
              path: p.pkcs11.module,
            },
          ],
        }
      : {},
};
