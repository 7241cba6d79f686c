/**
 * The remote backend: a signing server holds the key; Signet POSTs the file (sign/remote.ts) and
 * verifies what comes back, including that the signed content is what was sent. The server
 * timestamps; `--allow-unsigned-fallback` applies (off the release path).
 */
import { parseSecretRef } from '../../secrets.ts';
import { remoteProfileSchema } from '../config.ts';
import { absMaterial, KeyMaterials } from '../key-material.ts';
import { checkRemoteUrl, type RemoteSettings, remoteProduce } from '../remote.ts';
import type { ProfileFile, ProfileOf, SigningBackend } from './types.ts';

type Profile = ProfileOf<'remote'>;

export const remoteBackend: SigningBackend<Profile> = {
  name: 'remote',
  parse: (raw) => remoteProfileSchema.parse(raw),
  resolvePaths(p, base) {
    const cf = absMaterial(base, p.caFile);
    if (cf) p.caFile = cf;
  },
  unsignedFallback: true,
  create(p, ctx) {
    const settings: RemoteSettings = {
      url: p.url,
      token: parseSecretRef(p.token, `signing.profiles.${p.name}.token`),
      timeoutMs: p.timeoutMs,
      retries: p.retries,
      retryWaitMs: p.retryWaitMs,
      digest: p.digest,
      ...(p.caFile ? { caFile: p.caFile } : {}),
    };
    checkRemoteUrl(settings.url);
    // a CA bundle from env:/file: stays in memory (Node takes the PEM itself)
    const materials = new KeyMaterials(
      {
        caFile: p.caFile
          ? { field: `signing.profiles.${p.name}.caFile`, value: p.caFile, kind: 'certs' as const }
          : undefined,
      },
      ctx.env,
    );
    const withCa = (): RemoteSettings => {
      const ca = materials.resolve().caFile;
      if (!ca) return settings;
      return 'bytes' in ca ? { ...settings, ca: ca.bytes } : { ...settings, caFile: ca.path };
    };
    return {
      prepare: () => void materials.resolve(),
      produce: (input) => remoteProduce(withCa(), input),
      frame: { checkContent: true },
    };
  },
  files: (p): ProfileFile[] =>
    p.caFile ? [{ field: 'caFile', value: p.caFile, code: 'E_SIGN_KEY_MISSING', material: 'certs' }] : [],
  secrets: (p) => [['token', p.token]],
};
