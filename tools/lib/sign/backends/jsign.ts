/**
 * The jsign backend (Java): cloud KMS and HSM storetypes, or a PKCS12/JKS keystore file. jsign
 * signs in place, so the input is copied to the output first and jsign runs on the copy.
 */
import { copyFileSync } from 'node:fs';
import { isAbsolute, resolve } from 'node:path';
import { SignetError } from '../../errors.ts';
import { parseSecretRef } from '../../secrets.ts';
import { jsignProfileSchema } from '../config.ts';
import { checkJsignSecrets, type JsignSettings, jsignArgs } from '../jsign.ts';
import { absMaterial, isMaterialRef, KeyMaterials } from '../key-material.ts';
import type { ProfileFile, ProfileOf, SigningBackend } from './types.ts';

type Profile = ProfileOf<'jsign'>;

const fileStore = (p: Profile) => p.storetype === 'PKCS12' || p.storetype === 'JKS';

export const jsignBackend: SigningBackend<Profile> = {
  name: 'jsign',
  parse: (raw) => jsignProfileSchema.parse(raw),
  resolvePaths(p, base) {
    if (!p.jar.startsWith('pkcs11:') && !isAbsolute(p.jar)) p.jar = resolve(base, p.jar);
    const cf = absMaterial(base, p.certfile);
    if (cf) p.certfile = cf;
    if (p.keystore?.startsWith('file:')) p.keystore = absMaterial(base, p.keystore);
  },
  create(p, ctx) {
    const field = (k: string) => `signing.profiles.${p.name}.${k}`;
    const settings: JsignSettings = {
      jar: p.jar,
      storetype: p.storetype,
      digest: p.digest,
      ...(p.keystore ? { keystore: p.keystore } : {}),
      ...(p.alias ? { alias: p.alias } : {}),
      ...(p.storepass ? { storepass: parseSecretRef(p.storepass, field('storepass')) } : {}),
      ...(p.keypass ? { keypass: parseSecretRef(p.keypass, field('keypass')) } : {}),
      ...(p.certfile ? { certfile: p.certfile } : {}),
      ...(p.endpoint ? { endpoint: p.endpoint } : {}),
      ...(p.account ? { account: p.account } : {}),
      ...(p.certificateProfile ? { certificateProfile: p.certificateProfile } : {}),
      ...(p.tsmode ? { tsmode: p.tsmode } : {}),
      ...(p.productUrl ? { productUrl: p.productUrl } : {}),
    };
    jsignArgs(settings, 'check.exe'); // validates the storetype's required fields up front
    if (p.keystore && isMaterialRef(p.keystore) && !fileStore(p))
      throw new SignetError(
        'E_CONFIG_INVALID',
        `${field('keystore')}: env:/file: references name keystore files (storetype PKCS12 or JKS), not a ${p.storetype} keystore`,
        { details: { field: field('keystore'), storetype: p.storetype } },
      );
    const materials = new KeyMaterials(
      {
        certfile: p.certfile
          ? { field: field('certfile'), value: p.certfile, kind: 'certs' as const }
          : undefined,
        keystore:
          p.keystore && fileStore(p)
            ? { field: field('keystore'), value: p.keystore, kind: 'keystore' as const }
            : undefined,
      },
      ctx.env,
    );
    return {
      prepare: () => void materials.resolve(),
      produce: async (input) => {
        const plan = ctx.timestamp();
        const s = plan ? { ...settings, timestamp: plan } : settings;
        checkJsignSecrets(s);
        copyFileSync(input.input, input.output);
        await materials.use((paths) =>
          ctx.runner.run(p.java, jsignArgs({ ...s, ...paths }, input.output, { name: input.description }), {
            outputs: [input.output],
            timeoutMs: p.timeoutMs,
            label: 'jsign',
            input: '',
          }),
        );
      },
    };
  },
  files(p) {
    const out: ProfileFile[] = [{ field: 'jar', value: p.jar, code: 'E_TOOL_MISSING' }];
    if (p.certfile)
      out.push({ field: 'certfile', value: p.certfile, code: 'E_SIGN_KEY_MISSING', material: 'certs' });
    if (p.keystore && fileStore(p))
      out.push({ field: 'keystore', value: p.keystore, code: 'E_SIGN_KEY_MISSING', material: 'keystore' });
    return out;
  },
  secrets: (p) => [
    ['storepass', p.storepass],
    ['keypass', p.keypass],
  ],
  doctor: (p) => ({
    requires: ['java'],
    files: [
      {
        name: `jsign jar (${p.name})`,
        purpose: `jsign for profile "${p.name}"`,
        path: p.jar,
        install:
          'download jsign-<version>.jar from https://github.com/ebourg/jsign/releases and set signing.profiles.<name>.jar',
      },
    ],
  }),
};
