/**
 * Key material from where CI keeps it. A profile's key and certificate files (osslsigncode
 * `pkcs12`, `cert`, `key`; jsign `certfile` and a PKCS12/JKS `keystore`; the remote backend's
 * `caFile`) are a plain path (used as is), `env:NAME` or `file:PATH`:
 *
 * - `env:NAME` — the variable holds PEM text, the path of an existing file (treated like
 *   `file:`), or base64 of the file (the electron-builder `CSC_LINK` convention; whitespace and
 *   line breaks ignored, an optional `data:…;base64,` prefix accepted).
 * - `file:PATH` — the file holds the material itself (binary PKCS#12 / DER, or PEM) or base64 text
 *   of it.
 *
 * Decoded material is checked (PKCS#12 structure, PEM label, DER length) and written, for one run
 * only, to a 0600 file in a private 0700 temp folder that is removed afterwards — on success,
 * failure and Ctrl-C/SIGTERM (cleanup.ts). Decoded values are registered with the redactor, and no
 * message ever carries them: errors name the field and the variable or file.
 */
import { createHash } from 'node:crypto';
import { chmodSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import { SignetError } from '../errors.ts';
import { registerSecret } from '../redact.ts';
import { registerCleanup, releaseCleanup } from './cleanup.ts';

/** What a field must hold: a PKCS#12 file, certificates, a private key, or a Java/PKCS#12 keystore. */
export type MaterialKind = 'pkcs12' | 'certs' | 'key' | 'keystore';

export interface MaterialSpec {
  /** Config path of the field, e.g. signing.profiles.release.pkcs12 (used in messages). */
  field: string;
  /** A path, env:NAME or file:PATH (absolute, see `absMaterial`). */
  value: string;
  kind: MaterialKind;
}

/** A file to use in place, or decoded bytes to write to a private file for the run. */
export type Material = { path: string } | { bytes: Buffer };

const WHAT: Record<MaterialKind, string> = {
  pkcs12: 'a PKCS#12 (.p12/.pfx) file',
  certs: 'certificates (PEM or DER)',
  key: 'a private key (PEM or DER)',
  keystore: 'a PKCS#12 or JKS keystore',
};
const FILE_NAME: Record<MaterialKind, string> = {
  pkcs12: 'key.p12',
  certs: 'certs.pem',
  key: 'key.pem',
  keystore: 'keystore',
};

export function isMaterialRef(value: string): boolean {
  return value.startsWith('env:') || value.startsWith('file:');
}

/** Makes a path or a `file:` reference absolute against `base`; `env:` and `pkcs11:` stay as they are. */
export function absMaterial(base: string, value: string): string;
export function absMaterial(base: string, value: string | undefined): string | undefined;
export function absMaterial(base: string, value: string | undefined): string | undefined {
  if (value === undefined || value.startsWith('env:') || value.startsWith('pkcs11:')) return value;
  if (value.startsWith('file:')) return `file:${resolve(base, value.slice(5))}`;
  return isAbsolute(value) ? value : resolve(base, value);
}

function invalid(field: string, problem: string, details: Record<string, unknown>): never {
  throw new SignetError('E_SIGN_KEY_INVALID', `${field}: ${problem}`, {
    details: { field, ...details },
  });
}

/** A DER SEQUENCE whose length is exactly the buffer (BER indefinite length accepted). Returns the header length. */
function derSequence(b: Buffer): number | undefined {
  if (b.length < 4 || b[0] !== 0x30) return undefined;
  const l = b[1]!;
  if (l === 0x80) return b[b.length - 1] === 0 && b[b.length - 2] === 0 ? 2 : undefined;
  if (l < 0x80) return 2 + l === b.length ? 2 : undefined;
  const n = l & 0x7f;
  if (n > 4 || b.length < 2 + n) return undefined;
  let len = 0;
  for (let i = 0; i < n; i++) len = len * 256 + b[2 + i]!;
  return 2 + n + len === b.length ? 2 + n : undefined;
}

/** PFX ::= SEQUENCE { version INTEGER (3), … } */
function isPkcs12(b: Buffer): boolean {
  const h = derSequence(b);
  return h !== undefined && b[h] === 0x02 && b[h + 1] === 0x01 && b[h + 2] === 0x03;
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----[\s\S]+?-----END \1-----/g;

function pemLabels(text: string): string[] {
  return [...text.matchAll(PEM_BLOCK)].map((m) => m[1]!);
}

/** Undefined when `bytes` is acceptable material of `kind`, else what is wrong ("is …"; never the content). */
function problemOf(kind: MaterialKind, bytes: Buffer): string | undefined {
  const text = bytes.includes(0) ? '' : bytes.toString('latin1');
  if (text.includes('-----BEGIN ')) {
    const labels = pemLabels(text);
    if (!labels.length) return 'is a truncated or malformed PEM block';
    if (kind === 'pkcs12' || kind === 'keystore')
      return `is PEM ${labels[0]}, not ${WHAT[kind]} (PEM files go in cert and key)`;
    if (kind === 'key' && !labels.some((l) => l.endsWith('PRIVATE KEY')))
      return `is PEM ${labels[0]}, not a private key`;
    if (kind === 'certs' && !labels.some((l) => l === 'CERTIFICATE' || l === 'PKCS7'))
      return `is PEM ${labels[0]}, not certificates`;
    return undefined;
  }
  if (kind === 'pkcs12') return isPkcs12(bytes) ? undefined : `is not ${WHAT[kind]}`;
  if (kind === 'keystore') {
    const magic = bytes.length >= 4 ? bytes.readUInt32BE(0) : 0;
    return isPkcs12(bytes) || magic === 0xfeedfeed || magic === 0xcececece
      ? undefined
      : `is not ${WHAT[kind]}`;
  }
  return derSequence(bytes) !== undefined ? undefined : `is not ${WHAT[kind]}`;
}

/** Base64 (or base64url) text, whitespace ignored; undefined when it is not. */
function decodeBase64(text: string): Buffer | undefined {
  const t = text.replace(/^data:[^,]{0,100};base64,/i, '').replace(/\s+/g, '');
  if (t.length < 8 || t.length % 4 === 1 || !/^[A-Za-z0-9+/_-]+={0,2}$/.test(t)) return undefined;
  return Buffer.from(t, 'base64');
}

/** Masks the text of a secret and its pieces (a base64 or PEM line leaked alone is masked too). */
function registerText(text: string, decoded?: Buffer): void {
  if (decoded && !decoded.includes(0) && decoded.includes('-----BEGIN '))
    registerText(decoded.toString('latin1'));
  registerSecret(text);
  registerSecret(text.replace(/\s+/g, ''));
  for (const line of text.split(/\s+/))
    if (line.length >= 16 && !line.startsWith('-----')) registerSecret(line);
}

/** Material from the bytes of a `file:` (or of a file an env var names): in place, or base64 decoded. */
function fromFile(
  spec: MaterialSpec,
  path: string,
  source: string,
  details: Record<string, unknown>,
): Material {
  let bytes: Buffer;
  try {
    if (!statSync(path).isFile()) throw new Error('not a file');
    bytes = readFileSync(path);
  } catch {
    throw new SignetError('E_SECRET_MISSING', `${spec.field}: cannot read ${source}`, {
      details: { field: spec.field, ...details },
    });
  }
  const direct = problemOf(spec.kind, bytes);
  if (direct === undefined) return { path };
  const text = bytes.includes(0) ? undefined : bytes.toString('latin1');
  if (text?.includes('-----BEGIN ')) invalid(spec.field, `the content of ${source} ${direct}`, details);
  const decoded = text === undefined ? undefined : decodeBase64(text);
  if (!decoded) invalid(spec.field, `${source} holds neither ${WHAT[spec.kind]} nor base64 of one`, details);
  registerText(text!, decoded);
  const why = problemOf(spec.kind, decoded);
  if (why !== undefined) invalid(spec.field, `${source} holds base64 whose decoded content ${why}`, details);
  return { bytes: decoded };
}

/** Resolves a reference (checks content, registers decoded text with the redactor); writes nothing. */
export function resolveMaterial(
  spec: MaterialSpec,
  env: NodeJS.ProcessEnv = process.env,
  cwd: string = process.cwd(),
): Material {
  const { field, value } = spec;
  if (value.startsWith('file:')) {
    const path = value.slice(5);
    return fromFile(spec, path, `file ${path}`, { path });
  }
  if (!value.startsWith('env:')) return { path: value };
  const name = value.slice(4);
  const raw = env[name];
  const details = { env: name };
  if (raw === undefined || raw.trim() === '')
    throw new SignetError('E_SECRET_MISSING', `${field}: environment variable ${name} is not set`, {
      details: { field, ...details },
    });
  const text = raw.trim();
  const source = `environment variable ${name}`;
  if (text.includes('-----BEGIN ')) {
    registerText(text);
    // one-line PEM with escaped line breaks (`\n`), as some secret stores keep it
    const pem = !text.includes('\n') && text.includes('\\n') ? text.replace(/(\\r)?\\n/g, '\n') : text;
    const why = problemOf(spec.kind, Buffer.from(`${pem}\n`));
    if (why !== undefined) invalid(field, `the content of ${source} ${why}`, details);
    return { bytes: Buffer.from(`${pem}\n`) };
  }
  if (!/[\r\n]/.test(text) && text.length <= 4096) {
    const path = resolve(cwd, text);
    let isFile = false;
    try {
      isFile = statSync(path).isFile();
    } catch {}
    if (isFile) return fromFile(spec, path, `the file ${source} names`, details);
  }
  const decoded = decodeBase64(text);
  registerText(text, decoded);
  if (!decoded)
    invalid(
      field,
      `${source} holds neither the path of an existing file, PEM text, nor base64 of ${WHAT[spec.kind]}`,
      details,
    );
  const why = problemOf(spec.kind, decoded);
  if (why !== undefined) invalid(field, `${source} holds base64 whose decoded content ${why}`, details);
  return { bytes: decoded };
}

/**
 * The key material of one profile: resolved once (`resolve`, before any file is touched), then
 * handed to each run as paths (`use`): configured files in place, decoded material in a private
 * 0600 file removed when the run ends.
 */
export class KeyMaterials<K extends string> {
  private resolved: Partial<Record<K, Material>> | undefined;
  private readonly specs: Partial<Record<K, MaterialSpec>>;
  private readonly env: NodeJS.ProcessEnv;
  constructor(specs: Partial<Record<K, MaterialSpec | undefined>>, env: NodeJS.ProcessEnv = process.env) {
    this.specs = Object.fromEntries(Object.entries(specs).filter(([, s]) => s !== undefined)) as Partial<
      Record<K, MaterialSpec>
    >;
    this.env = env;
  }

  resolve(): Partial<Record<K, Material>> {
    if (this.resolved) return this.resolved;
    const out: Partial<Record<K, Material>> = {};
    for (const [k, spec] of Object.entries(this.specs) as [K, MaterialSpec][])
      out[k] = resolveMaterial(spec, this.env);
    this.resolved = out;
    return out;
  }

  async use<T>(fn: (paths: Partial<Record<K, string>>) => Promise<T>): Promise<T> {
    const materials = this.resolve();
    const paths: Partial<Record<K, string>> = {};
    const decoded = (Object.entries(materials) as [K, Material][]).filter(
      (e): e is [K, { bytes: Buffer }] => 'bytes' in e[1],
    );
    for (const [k, m] of Object.entries(materials) as [K, Material][]) if ('path' in m) paths[k] = m.path;
    if (!decoded.length) return fn(paths);
    const dir = mkdtempSync(join(tmpdir(), 'signet-key-'));
    registerCleanup(dir);
    try {
      chmodSync(dir, 0o700);
      for (const [k, m] of decoded) {
        const path = join(dir, FILE_NAME[this.specs[k]!.kind]);
        writeFileSync(path, m.bytes, { mode: 0o600, flag: 'wx' });
        paths[k] = path;
      }
      return await fn(paths);
    } finally {
      releaseCleanup(dir);
    }
  }
}

/** SHA-256 of what a reference resolves to (the installers' cache key); never throws. */
export function materialDigest(
  value: string,
  kind: MaterialKind,
  env: NodeJS.ProcessEnv = process.env,
): string {
  try {
    const m = resolveMaterial({ field: 'identity', value, kind }, env);
    return createHash('sha256')
      .update('bytes' in m ? m.bytes : readFileSync(m.path))
      .digest('hex');
  } catch {
    return `missing:${value}`;
  }
}
