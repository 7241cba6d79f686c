/**
 * Verification: osslsigncode checks the signature, the file digest, the chain (to the configured
 * CA bundle or the system store) and the timestamp; Signet then reads the PKCS#7 itself to get the
 * leaf certificate's SHA-256 and enforces the profile's pins and timestamp policy.
 * `verifyFile` throws a coded error or returns a SignedArtifact; `inspectSignature` never throws
 * and returns the per-file report that `signet verify --json` and the publish gate use.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { brandSigned, type SignatureInfo, type SignedArtifact } from '../artifact.ts';
import { type ErrorCode, SignetError, toSignetError } from '../errors.ts';
import { defaultRunner, type Runner } from '../exec/runner.ts';
import type { KnownPrefix } from '../exec/spawn-helper.ts';
import { certSha256, leafCertificate, parsePkcs7, readMsiSignature, readPeSignature } from './der.ts';
import { describeArtifactFast, describeArtifactOffThread } from './hash.ts';
import { boundSigner, oneLineDn, sameDn } from './signer.ts';
import { isSnapshot, takeSnapshot } from './snapshot.ts';
import { osslsigncodeEnv } from './tool-env.ts';

export const SYSTEM_CA_BUNDLE = '/etc/ssl/certs/ca-certificates.crt';

export interface VerifyOptions {
  /** CA bundle (PEM) the signer chain must reach; the system store when omitted. */
  caFile?: string;
  /** CA bundle for the timestamp authority; defaults to caFile, then the system store. */
  tsaCaFile?: string;
  /** Accepted signer certificates (SHA-256 of the DER leaf); any match passes. Empty: no pin. */
  leafSha256?: string[];
  /** Expected signer subject: the whole one-line DN, exactly (e.g. "/CN=Example Ltd/O=Example Ltd"). */
  subject?: string;
  /** osslsigncode program (default "osslsigncode"). */
  osslsigncode?: string;
  timeoutMs?: number;
  runner?: Runner;
  /**
   * A file the verified one is expected to start with (a copy of a release's base): its SHA-256
   * continues from that file's state when the bytes are equal, and is computed in full when not.
   */
  knownPrefix?: KnownPrefix;
}

export interface VerifyPolicy {
  profile?: string;
  /** A missing or invalid timestamp is an error (the release path). */
  requireTimestamp?: boolean;
  /** Mark the result as dev (made with throwaway certificates). */
  dev?: boolean;
}

export interface VerifyReport {
  path: string;
  file: string;
  kind: string;
  /** True when the file carries a signature that verified and passed every policy check. */
  signed: boolean;
  subject?: string;
  issuer?: string;
  leafSha256?: string;
  digest?: string;
  /** ISO 8601 time of the (verified) timestamp; null when there is none. */
  timestamp: string | null;
  /** Number of signatures, nested ones included (0 when unsigned). */
  signatures: number;
  fileSha256?: string;
  size?: number;
  profile?: string;
  dev?: boolean;
  error?: { code: ErrorCode; message: string };
}

/** Pure: the osslsigncode verify argv. */
export function verifyArgs(path: string, options: Pick<VerifyOptions, 'caFile' | 'tsaCaFile'>): string[] {
  const args = ['verify'];
  const ca = options.caFile;
  const tsaCa =
    options.tsaCaFile ?? options.caFile ?? (existsSync(SYSTEM_CA_BUNDLE) ? SYSTEM_CA_BUNDLE : undefined);
  if (ca) args.push('-CAfile', ca);
  if (tsaCa) args.push('-TSA-CAfile', tsaCa);
  args.push('-in', path);
  return args;
}

export interface ParsedVerifyOutput {
  ok: boolean;
  unsigned: boolean;
  mismatch: boolean;
  digest?: string;
  subject?: string;
  issuer?: string;
  signerSerial?: string;
  timestamp?: string;
  timestampVerified: boolean;
  signatures: number;
}

function opensslDateToIso(text: string): string | undefined {
  const t = Date.parse(text.replace(/\s+GMT$/, ' UTC').replace(/\s+/g, ' '));
  return Number.isNaN(t) ? undefined : new Date(t).toISOString();
}

/** Pure: reads what osslsigncode verify printed (stdout + stderr). */
export function parseVerifyOutput(text: string, exitCode: number): ParsedVerifyOutput {
  const unsigned = /Unable to extract existing signature|No signature found/i.test(text);
  const mismatch = /MISMATCH/.test(text);
  const digest = /Message digest algorithm\s*:\s*(\S+)/.exec(text)?.[1]?.toLowerCase();
  const signerBlock =
    /Signer's certificate:[\s\S]*?Signer #0:\s*\n\s*Subject:\s*(.*)\n\s*Issuer\s*:\s*(.*)\n\s*Serial\s*:\s*([0-9A-Fa-f]+)/.exec(
      text,
    );
  const tsTime = /Timestamp time:\s*(.+)/.exec(text)?.[1]?.trim();
  const timestampVerified = /Timestamp Server Signature verification: ok/.test(text);
  const counted = /Number of verified signatures:\s*(\d+)/.exec(text);
  const indexes = text.match(/^Signature Index: \d+/gm)?.length ?? 0;
  const result: ParsedVerifyOutput = {
    ok: exitCode === 0 && /Succeeded/.test(text) && !mismatch,
    unsigned,
    mismatch,
    timestampVerified,
    signatures: counted ? Number(counted[1]) : indexes,
  };
  if (digest) result.digest = digest;
  if (signerBlock) {
    result.subject = (signerBlock[1] ?? '').trim();
    result.issuer = (signerBlock[2] ?? '').trim();
    result.signerSerial = (signerBlock[3] ?? '').toUpperCase().replace(/^0+(?=.)/, '');
  }
  if (tsTime) {
    const iso = opensslDateToIso(tsTime);
    if (iso) result.timestamp = iso;
  }
  return result;
}

/** Pure: the meaningful failure lines of osslsigncode verify output (deduplicated, at most 4). */
export function verifyFailureReason(text: string): string {
  const out: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    let hit: string | undefined;
    const openssl = /Verify error: (.+)$/.exec(line);
    if (openssl) hit = openssl[1];
    else if (/^Error: /.test(line)) hit = line.slice(7);
    else if (
      /verification: failed$|MISMATCH|Unable to |Invalid |expired|No signature/i.test(line) &&
      !/^\d/.test(line)
    )
      hit = line;
    if (hit && !out.includes(hit)) out.push(hit);
  }
  return out.slice(0, 4).join('; ');
}

/** The PKCS#7 blob of a signed file: read in-process for PE, through extract-signature otherwise. */
export async function readSignatureBlob(
  path: string,
  options: { osslsigncode?: string; runner?: Runner; timeoutMs?: number } = {},
): Promise<Buffer | undefined> {
  const file = basename(path);
  const refuse = (reason: string): never => {
    throw new SignetError('E_VERIFY_AMBIGUOUS', `${file}: refused: ${reason}`, { details: { path } });
  };
  const pe = readPeSignature(path);
  if (pe.kind === 'ambiguous') refuse(pe.reason);
  if (pe.kind === 'signed') return pe.pkcs7;
  if (pe.kind === 'unsigned') return undefined;
  const msi = readMsiSignature(path);
  if (msi.kind === 'ambiguous') refuse(msi.reason);
  if (msi.kind === 'signed') return msi.pkcs7;
  if (msi.kind === 'unsigned') return undefined;
  const dir = mkdtempSync(join(tmpdir(), 'signet-sig-'));
  try {
    const out = join(dir, 'sig.der');
    const r = await (options.runner ?? defaultRunner).run(
      options.osslsigncode ?? 'osslsigncode',
      ['extract-signature', '-in', path, '-out', out],
      {
        allowFailure: true,
        timeoutMs: options.timeoutMs ?? 120_000,
        label: 'osslsigncode extract-signature',
        outputs: [out],
        env: osslsigncodeEnv(),
      },
    );
    if (r.exitCode !== 0 || !existsSync(out)) return undefined;
    return readFileSync(out);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** True when the file already carries an Authenticode signature. */
export async function isSigned(
  path: string,
  options: { osslsigncode?: string; runner?: Runner } = {},
): Promise<boolean> {
  return (await readSignatureBlob(path, options)) !== undefined;
}

function fail(code: ErrorCode, message: string, details: Record<string, unknown>): never {
  throw new SignetError(code, message, { details });
}

function mustBeRegular(path: string): void {
  if (!existsSync(path))
    throw new SignetError('E_FILE_NOT_FOUND', `no such file: ${path}`, { details: { path } });
  // A directory, named pipe or device is refused before anything opens it (a FIFO would block).
  if (!statSync(path).isFile())
    throw new SignetError('E_FS_WRONG_TYPE', `${path}: not a regular file`, { details: { path } });
}

/** Verifies `path`; throws E_VERIFY_* (or a tool error) or returns the SignedArtifact. */
export async function verifyFile(
  path: string,
  options: VerifyOptions = {},
  policy: VerifyPolicy = {},
): Promise<SignedArtifact> {
  mustBeRegular(path);
  // One private snapshot: the hash, osslsigncode's verify and the signature blob all read the
  // same bytes, whatever happens to `path` meanwhile (a snapshot is not copied again).
  const snap = isSnapshot(path) ? undefined : takeSnapshot(path);
  try {
    return await verifyStable(path, snap?.path ?? path, options, policy);
  } finally {
    snap?.release();
  }
}

/**
 * verifyFile for a file in a folder this process created private (mkdtemp, 0700) and nobody else
 * writes: no snapshot is taken, since the caller ships this very path. The signing frame's own
 * output is the one such file.
 */
export async function verifyPrivateFile(
  path: string,
  options: VerifyOptions = {},
  policy: VerifyPolicy = {},
): Promise<SignedArtifact> {
  mustBeRegular(path);
  return verifyStable(path, path, options, policy);
}

/** verifyFile over `stable`, a file nobody else can change; reports and errors name `path`. */
async function verifyStable(
  path: string,
  stable: string,
  options: VerifyOptions,
  policy: VerifyPolicy,
): Promise<SignedArtifact> {
  const runner = options.runner ?? defaultRunner;
  const program = options.osslsigncode ?? 'osslsigncode';
  const pending = runner.run(program, verifyArgs(stable, options), {
    allowFailure: true,
    timeoutMs: options.timeoutMs ?? 120_000,
    label: 'osslsigncode verify',
    env: osslsigncodeEnv(),
  });
  // Hash while osslsigncode verifies (its process runs on the other core; in a batch the spawn
  // helper hashes, so this thread goes on with the next site).
  const [hashed, run] = await Promise.all([describeArtifactOffThread(stable, options.knownPrefix), pending]);
  const artifact = { ...hashed, path };
  const text = `${run.stdout}\n${run.stderr}`;
  const parsed = parseVerifyOutput(text, run.exitCode);
  const file = basename(path);
  if (parsed.unsigned) fail('E_VERIFY_UNSIGNED', `${file}: no Authenticode signature`, { path });
  if (!parsed.ok) {
    const reason = parsed.mismatch
      ? 'the file was changed after signing (digest MISMATCH)'
      : verifyFailureReason(text) || `osslsigncode verify exited ${run.exitCode}`;
    fail('E_VERIFY_FAILED', `${file}: signature did not verify: ${reason}`, { path, exitCode: run.exitCode });
  }
  const blob = await readSignatureBlob(stable, { osslsigncode: program, runner });
  const p7 = blob ? parsePkcs7(blob) : undefined;
  if (!p7)
    fail('E_VERIFY_FAILED', `${file}: cannot read the signer certificate from the signature`, { path });
  const leaf = boundSigner(file, path, p7, parsed);
  const leafSha256 = certSha256(leaf);
  const subject = oneLineDn(leaf.subject);
  const pins = (options.leafSha256 ?? []).map((h) => h.toLowerCase());
  if (pins.length && !pins.includes(leafSha256)) {
    fail('E_VERIFY_PIN_MISMATCH', `${file}: signer certificate ${leafSha256} is not pinned`, {
      path,
      leafSha256,
      pinned: pins,
    });
  }
  if (options.subject && !sameDn(subject, options.subject)) {
    fail('E_VERIFY_PIN_MISMATCH', `${file}: signer subject "${subject}" is not "${options.subject}"`, {
      path,
      subject,
    });
  }
  const timestamp = parsed.timestamp && parsed.timestampVerified ? parsed.timestamp : undefined;
  if (policy.requireTimestamp && !timestamp) {
    fail('E_VERIFY_NO_TIMESTAMP', `${file}: the signature carries no valid timestamp`, { path });
  }
  const info: SignatureInfo = {
    subject,
    leafSha256,
    digest: parsed.digest ?? 'unknown',
    signatures: Math.max(1, parsed.signatures),
    dev: policy.dev ?? false,
  };
  info.issuer = oneLineDn(leaf.issuer);
  if (timestamp) info.timestamp = timestamp;
  if (policy.profile) info.profile = policy.profile;
  return brandSigned(artifact, info);
}

/** Never throws: the per-file report for `signet verify --json` and the publish gate. */
export async function inspectSignature(
  path: string,
  options: VerifyOptions = {},
  policy: VerifyPolicy = {},
): Promise<VerifyReport> {
  const base: VerifyReport = {
    path,
    file: basename(path),
    kind: 'other',
    signed: false,
    timestamp: null,
    signatures: 0,
  };
  if (policy.profile) base.profile = policy.profile;
  try {
    const a = await verifyFile(path, options, policy);
    const s = a.signature;
    const report: VerifyReport = {
      ...base,
      kind: a.kind,
      signed: true,
      subject: s.subject,
      leafSha256: s.leafSha256,
      digest: s.digest,
      signatures: s.signatures,
      fileSha256: a.sha256,
      size: a.size,
      dev: s.dev,
    };
    if (s.issuer) report.issuer = s.issuer;
    report.timestamp = s.timestamp ?? null;
    return report;
  } catch (e) {
    const err = toSignetError(e);
    const report: VerifyReport = { ...base, error: { code: err.code, message: err.message } };
    // An ambiguous or unbound signature names no signer: what Signet read is not what verified.
    const unbound = err.code === 'E_VERIFY_AMBIGUOUS' || err.code === 'E_VERIFY_SIGNER_UNBOUND';
    if (existsSync(path) && statSync(path).isFile()) {
      try {
        const a = describeArtifactFast(path);
        report.kind = a.kind;
        report.fileSha256 = a.sha256;
        report.size = a.size;
        // Describe what is there even when it failed policy, so the report says *why*.
        const blob = unbound
          ? undefined
          : await readSignatureBlob(path, {
              osslsigncode: options.osslsigncode,
              runner: options.runner,
            });
        const p7 = blob ? parsePkcs7(blob) : undefined;
        const leaf = p7 ? leafCertificate(p7) : undefined;
        if (leaf) {
          report.leafSha256 = certSha256(leaf);
          report.subject = `/${leaf.subject.split('\n').join('/')}`;
          report.signatures = 1;
        }
      } catch {
        /* the error above is the report */
      }
    }
    return report;
  }
}
