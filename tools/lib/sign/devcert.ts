/**
 * `signet dev-cert`: a throwaway local PKI for demos and tests — a CA, a code-signing leaf and an
 * RFC 3161 TSA certificate, every subject labelled "NOT FOR RELEASE". The returned profile is a
 * ready osslsigncode profile with `dev: true` (the release path refuses dev profiles).
 */
import { X509Certificate } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { SignetError } from '../errors.ts';
import { defaultRunner, type Runner } from '../exec/runner.ts';
import type { SigningProfile } from './config.ts';
import { certSha256 } from './der.ts';

export const DEV_LABEL = 'NOT FOR RELEASE';

export interface DevCertOptions {
  /** Validity in days (default 30). */
  days?: number;
  /** Name put in the subjects (default "Signet DEV"). */
  name?: string;
  /** TSA URLs for the returned profile (e.g. a local TSA). Without any, the profile does not timestamp. */
  tsaUrls?: string[];
  /** Key algorithm: EC P-256 (fast, default) or RSA 2048. */
  keyType?: 'ec' | 'rsa';
  /** Reuse files already present in `dir` instead of making new ones. */
  reuse?: boolean;
  runner?: Runner;
}

export interface DevCert {
  dir: string;
  /** The dev CA certificate (PEM): the trust anchor for verify. */
  caCert: string;
  caKey: string;
  /** Code-signing leaf + CA chain (PEM), what osslsigncode's -certs takes. */
  cert: string;
  /** The leaf certificate alone (PEM). */
  leafCert: string;
  /** The leaf private key (PEM, unencrypted: dev only). */
  key: string;
  tsaCert: string;
  tsaKey: string;
  /** TSA certificate + CA (PEM), what a TSA sends along with its replies. */
  tsaChain: string;
  /** SHA-256 of the leaf certificate's DER (lowercase hex): what `verify.leafSha256` pins. */
  leafSha256: string;
  /** The leaf subject, OpenSSL one-line form. */
  subject: string;
  profile: SigningProfile & { backend: 'osslsigncode'; dev: true };
}

const EXTENSIONS = `[v3_ca]
basicConstraints=critical,CA:TRUE
keyUsage=critical,keyCertSign,cRLSign
subjectKeyIdentifier=hash
[v3_cs]
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=codeSigning
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
[v3_tsa]
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=critical,timeStamping
subjectKeyIdentifier=hash
authorityKeyIdentifier=keyid
[req]
distinguished_name=dn
prompt=no
[dn]
CN=unused
`;

function keyArgs(type: 'ec' | 'rsa'): string[] {
  return type === 'rsa' ? ['-newkey', 'rsa:2048'] : ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256'];
}

/** Builds the openssl argv lists (pure) for one CA + leaf + TSA set under `dir`. */
export function devCertCommands(
  dir: string,
  name: string,
  days: number,
  keyType: 'ec' | 'rsa',
): { file: string; args: string[] }[] {
  const p = (f: string) => join(dir, f);
  const conf = p('openssl-ext.cnf');
  const leaf = (key: string, csr: string, subj: string) => ({
    file: 'openssl',
    args: [
      'req',
      '-config',
      conf,
      ...keyArgs(keyType),
      '-nodes',
      '-keyout',
      p(key),
      '-out',
      p(csr),
      '-subj',
      subj,
    ],
  });
  const issue = (csr: string, out: string, ext: string) => ({
    file: 'openssl',
    args: [
      'x509',
      '-req',
      '-in',
      p(csr),
      '-CA',
      p('ca.pem'),
      '-CAkey',
      p('ca.key'),
      '-set_serial',
      `0x${Math.floor(Math.random() * 2 ** 48).toString(16)}${Date.now().toString(16)}`,
      '-days',
      String(days),
      '-sha256',
      '-extfile',
      conf,
      '-extensions',
      ext,
      '-out',
      p(out),
    ],
  });
  return [
    {
      file: 'openssl',
      args: [
        'req',
        '-config',
        conf,
        '-x509',
        ...keyArgs(keyType),
        '-nodes',
        '-keyout',
        p('ca.key'),
        '-out',
        p('ca.pem'),
        '-days',
        String(days),
        '-sha256',
        '-subj',
        `/CN=${name} CA - ${DEV_LABEL}/O=${name}`,
        '-extensions',
        'v3_ca',
      ],
    },
    leaf('leaf.key', 'leaf.csr', `/CN=${name} code signing - ${DEV_LABEL}/O=${name}`),
    issue('leaf.csr', 'leaf.pem', 'v3_cs'),
    leaf('tsa.key', 'tsa.csr', `/CN=${name} TSA - ${DEV_LABEL}/O=${name}`),
    issue('tsa.csr', 'tsa.pem', 'v3_tsa'),
  ];
}

export async function makeDevCert(dir: string, options: DevCertOptions = {}): Promise<DevCert> {
  const root = resolve(dir);
  mkdirSync(root, { recursive: true });
  const runner = options.runner ?? defaultRunner;
  const name = (options.name ?? 'Signet DEV').replace(/[/=\\]/g, ' ');
  const p = (f: string) => join(root, f);
  const have = ['ca.pem', 'ca.key', 'leaf.pem', 'leaf.key', 'tsa.pem', 'tsa.key'].every((f) =>
    existsSync(p(f)),
  );
  if (!(options.reuse && have)) {
    writeFileSync(p('openssl-ext.cnf'), EXTENSIONS);
    for (const cmd of devCertCommands(root, name, options.days ?? 30, options.keyType ?? 'ec')) {
      await runner.run(cmd.file, cmd.args, { label: 'openssl (dev-cert)', timeoutMs: 60_000 });
    }
    for (const k of ['ca.key', 'leaf.key', 'tsa.key']) chmodSync(p(k), 0o600);
    writeFileSync(p('chain.pem'), readFileSync(p('leaf.pem'), 'utf8') + readFileSync(p('ca.pem'), 'utf8'));
    writeFileSync(p('tsa-chain.pem'), readFileSync(p('tsa.pem'), 'utf8') + readFileSync(p('ca.pem'), 'utf8'));
    // the folder holds private keys: keep it out of whatever repository it was made in
    writeFileSync(p('.gitignore'), '# signet dev-cert: private keys, never commit\n*\n');
    writeFileSync(
      p('README.txt'),
      `Throwaway development PKI made by \`signet dev-cert\`. ${DEV_LABEL}.\nNever trust ca.pem outside tests and demos.\n`,
    );
  }
  let leafCert: X509Certificate;
  try {
    leafCert = new X509Certificate(readFileSync(p('leaf.pem')));
  } catch (e) {
    throw new SignetError('E_SIGN_KEY_MISSING', `dev-cert: cannot read ${p('leaf.pem')}`, { cause: e });
  }
  const leafSha256 = certSha256(leafCert);
  const subject = leafCert.subject.split('\n').join(', ');
  const tsaUrls = options.tsaUrls ?? [];
  return {
    dir: root,
    caCert: p('ca.pem'),
    caKey: p('ca.key'),
    cert: p('chain.pem'),
    leafCert: p('leaf.pem'),
    key: p('leaf.key'),
    tsaCert: p('tsa.pem'),
    tsaKey: p('tsa.key'),
    tsaChain: p('tsa-chain.pem'),
    leafSha256,
    subject,
    profile: {
      backend: 'osslsigncode',
      cert: p('chain.pem'),
      key: p('leaf.key'),
      digest: 'sha256',
      dev: true,
      osslsigncode: 'osslsigncode',
      timeoutMs: 300_000,
      timestamp: tsaUrls.length ? { urls: tsaUrls, retries: 1, retryWaitMs: 200, timeoutMs: 10_000 } : false,
      verify: { caFile: p('ca.pem'), tsaCaFile: p('ca.pem'), leafSha256: [leafSha256] },
    },
  };
}
