/**
 * The jsign backend (Java). jsign signs in place, so Signet copies the input into its work
 * directory, runs `java -jar jsign.jar … FILE` there, then verifies like every other backend.
 * Secrets are passed as jsign's own `env:VAR` / `file:PATH` references (jsign ≥ 5.0 resolves
 * them itself): the secret value never reaches argv. Signet resolves each reference first, only
 * to fail early when it is missing and to register the value with the redactor.
 */
import { SignetError } from '../errors.ts';
import { resolveSecret, type SecretRef } from '../secrets.ts';

export const JSIGN_STORETYPES = [
  'TRUSTEDSIGNING',
  'AZUREKEYVAULT',
  'AWS',
  'GOOGLECLOUD',
  'PKCS11',
  'YUBIKEY',
  'PKCS12',
  'JKS',
] as const;
export type JsignStoretype = (typeof JSIGN_STORETYPES)[number];

export interface JsignSettings {
  jar: string;
  storetype: JsignStoretype;
  keystore?: string;
  alias?: string;
  storepass?: SecretRef;
  keypass?: SecretRef;
  certfile?: string;
  endpoint?: string;
  account?: string;
  certificateProfile?: string;
  tsmode?: 'RFC3161' | 'AUTHENTICODE';
  digest: string;
  productUrl?: string;
  timestamp?: { urls: string[]; retries: number; retryWaitMs: number };
}

const ALG: Record<string, string> = {
  sha1: 'SHA-1',
  sha256: 'SHA-256',
  sha384: 'SHA-384',
  sha512: 'SHA-512',
};

function need(value: string | undefined, field: string, storetype: string): string {
  if (!value) {
    throw new SignetError('E_CONFIG_INVALID', `jsign ${storetype}: "${field}" is required`, {
      details: { field, storetype },
    });
  }
  return value;
}

/** The keystore and alias jsign expects for each storetype (per jsign's documentation). */
export function jsignKeystore(s: JsignSettings): { keystore?: string; alias?: string } {
  switch (s.storetype) {
    case 'TRUSTEDSIGNING': {
      // keystore = the endpoint host (no scheme, no trailing slash), alias = <account>/<certificate profile>.
      const endpoint = need(s.endpoint ?? s.keystore, 'endpoint', s.storetype)
        .replace(/^https?:\/\//, '')
        .replace(/\/+$/, '');
      const alias =
        s.alias ??
        `${need(s.account, 'account', s.storetype)}/${need(s.certificateProfile, 'certificateProfile', s.storetype)}`;
      return { keystore: endpoint, alias };
    }
    case 'AZUREKEYVAULT': // keystore = vault name or URL, alias = certificate name
    case 'AWS': // keystore = region, alias = KMS key id/ARN
    case 'GOOGLECLOUD': // keystore = projects/P/locations/L/keyRings/R, alias = key name[/cryptoKeyVersions/N]
    case 'PKCS12':
    case 'JKS':
    case 'PKCS11': // keystore = SunPKCS11 config file or the PKCS#11 library path
      return {
        keystore: need(s.keystore, 'keystore', s.storetype),
        alias: need(s.alias, 'alias', s.storetype),
      };
    case 'YUBIKEY': // keystore not used; alias optional (first key otherwise)
      return s.alias ? { alias: s.alias } : {};
  }
}

/** Pure: the full argv after `java` for signing `file` (which jsign modifies in place). */
export function jsignArgs(s: JsignSettings, file: string, o: { name?: string } = {}): string[] {
  const args = ['-jar', s.jar, '--storetype', s.storetype];
  const { keystore, alias } = jsignKeystore(s);
  if (keystore) args.push('--keystore', keystore);
  if (alias) args.push('--alias', alias);
  if (s.storetype === 'TRUSTEDSIGNING' || s.storetype === 'AZUREKEYVAULT' || s.storetype === 'GOOGLECLOUD') {
    need(s.storepass, 'storepass (access token, env:VAR or file:PATH)', s.storetype);
  }
  if ((s.storetype === 'GOOGLECLOUD' || s.storetype === 'AWS') && !s.certfile) {
    need(undefined, 'certfile', s.storetype);
  }
  if (s.storepass) args.push('--storepass', s.storepass);
  if (s.keypass) args.push('--keypass', s.keypass);
  if (s.certfile) args.push('--certfile', s.certfile);
  args.push('--alg', ALG[s.digest] ?? 'SHA-256');
  if (s.timestamp?.urls.length) {
    args.push(
      '--tsaurl',
      s.timestamp.urls.join(','),
      '--tsmode',
      s.tsmode ?? 'RFC3161',
      '--tsretries',
      String(s.timestamp.retries),
      '--tsretrywait',
      String(Math.max(1, Math.ceil(s.timestamp.retryWaitMs / 1000))),
    );
  }
  if (o.name) args.push('--name', o.name);
  if (s.productUrl) args.push('--url', s.productUrl);
  args.push(file);
  return args;
}

/** Resolves each secret reference (fails early when missing; registers values for redaction). */
export function checkJsignSecrets(s: JsignSettings): void {
  if (s.storepass) resolveSecret(s.storepass, 'jsign storepass');
  if (s.keypass) resolveSecret(s.keypass, 'jsign keypass');
}
