/**
 * Per-site outputs as deltas of a release's base file, in one of two forms:
 *
 * - `signed`: the regions where the signed installer itself differs from the base. A file Signet
 *   signed in place (a PE's header fields and certificate table, an MSI's added signature streams
 *   and their tables: sign/pe-image.ts, sign/msi-image.ts) is its base but for a few blocks.
 *   Assembly applies them and verifies the result (`osslsigncode verify` with the same trust).
 * - `attach`: the regions where the site's unsigned installer differs from the base (its site
 *   data, checksums, product and package codes), plus the Authenticode signature (PKCS#7 DER).
 *   Assembly applies the regions and re-attaches the signature (`osslsigncode attach-signature`),
 *   which reproduces a file osslsigncode signed (it rewrites an MSI whole) and verifies it.
 *
 * Either way the chain, the timestamp and the pinned signer are verified, and the result is
 * checked against the recorded SHA-256 every time, so a delta that would assemble into anything
 * else is refused. A site costs a few KB, not a whole 10 MB installer.
 *
 * Layout of a delta file: magic "SGNDELT1", u32 header length, header JSON, then the region bytes
 * and the signature, in header order.
 */
import { createHash } from 'node:crypto';
import {
  closeSync,
  copyFileSync,
  ftruncateSync,
  openSync,
  readSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { SignetError } from '../errors.ts';
import { defaultRunner, type Runner } from '../exec/runner.ts';
import { readMsiSignature, readPeSignature } from '../sign/der.ts';
import { osslsigncodeEnv } from '../sign/tool-env.ts';

const MAGIC = Buffer.from('SGNDELT1');
const BLOCK = 4096;

export interface DeltaHeader {
  /** SHA-256 of the base file the regions apply to. */
  base: string;
  /** Size of the unsigned site file. */
  unsignedSize: number;
  regions: { offset: number; length: number }[];
  signatureLength: number;
  /** SHA-256 and size of the signed output the delta must assemble into. */
  sha256: string;
  size: number;
  /** An MSI signed with MsiDigitalSignatureEx (-add-msi-dse): attach needs it too. */
  msiDse?: boolean;
  /** `signed`: the regions are the signed file's and there is no signature to attach (absent: attach). */
  form?: 'signed' | 'attach';
}

export interface Delta {
  header: DeltaHeader;
  regions: Buffer[];
  signature: Buffer;
}

const CFB = Buffer.from([0xd0, 0xcf, 0x11, 0xe0, 0xa1, 0xb1, 0x1a, 0xe1]);
/** Signet signs every MSI with MsiDigitalSignatureEx (-add-msi-dse, see sign/osslsigncode.ts). */
function isCfb(b: Buffer): boolean {
  return b.length >= 8 && b.subarray(0, 8).equals(CFB);
}

/** The regions (4 KiB-aligned, merged when adjacent) where `unsigned` differs from `base`, and any tail. */
export function diffRegions(base: Buffer, unsigned: Buffer): { offset: number; bytes: Buffer }[] {
  const out: { offset: number; bytes: Buffer }[] = [];
  const common = Math.min(base.length, unsigned.length);
  let start = -1;
  for (let off = 0; off < common; off += BLOCK) {
    const end = Math.min(off + BLOCK, common);
    const same = base.subarray(off, end).equals(unsigned.subarray(off, end));
    if (!same && start < 0) start = off;
    if (same && start >= 0) {
      out.push({ offset: start, bytes: Buffer.from(unsigned.subarray(start, off)) });
      start = -1;
    }
  }
  if (start >= 0) out.push({ offset: start, bytes: Buffer.from(unsigned.subarray(start, common)) });
  if (unsigned.length > common) {
    const last = out[out.length - 1];
    if (last && last.offset + last.bytes.length === common)
      last.bytes = Buffer.concat([last.bytes, unsigned.subarray(common)]);
    else out.push({ offset: common, bytes: Buffer.from(unsigned.subarray(common)) });
  }
  return out;
}

/** The trust osslsigncode checks the re-attached signature against (it verifies on attach). */
export interface DeltaTrust {
  caFile?: string | undefined;
  tsaCaFile?: string | undefined;
  /** Pinned signer (SHA-256 of the leaf DER): attach refuses any other signer. */
  leafSha256?: string | undefined;
}

function trustArgs(t: DeltaTrust): string[] {
  return [
    ...(t.caFile ? ['-CAfile', t.caFile] : []),
    ...((t.tsaCaFile ?? t.caFile) ? ['-TSA-CAfile', (t.tsaCaFile ?? t.caFile)!] : []),
    ...(t.leafSha256 ? ['-require-leaf-hash', `sha256:${t.leafSha256}`] : []),
  ];
}

/** diffRegions over two files, reading 4 KiB blocks from both (constant memory), hashing the base on the way. */
export function diffFiles(
  basePath: string,
  unsignedPath: string,
): {
  regions: { offset: number; bytes: Buffer }[];
  baseSha256: string;
  unsignedSize: number;
  isMsi: boolean;
} {
  const fb = openSync(basePath, 'r');
  const fu = openSync(unsignedPath, 'r');
  try {
    const baseSize = statSync(basePath).size;
    const unsignedSize = statSync(unsignedPath).size;
    const hash = createHash('sha256');
    const regions: { offset: number; bytes: Buffer }[] = [];
    const a = Buffer.alloc(BLOCK);
    const b = Buffer.alloc(BLOCK);
    let open: { offset: number; parts: Buffer[] } | undefined;
    const close = () => {
      if (open) regions.push({ offset: open.offset, bytes: Buffer.concat(open.parts) });
      open = undefined;
    };
    let isMsi = false;
    for (let off = 0; off < Math.max(baseSize, unsignedSize); off += BLOCK) {
      const na = off < baseSize ? readSync(fb, a, 0, Math.min(BLOCK, baseSize - off), off) : 0;
      const nb = off < unsignedSize ? readSync(fu, b, 0, Math.min(BLOCK, unsignedSize - off), off) : 0;
      if (na) hash.update(a.subarray(0, na));
      if (off === 0) isMsi = isCfb(a.subarray(0, na));
      if (!nb) continue;
      const same = na === nb && a.subarray(0, na).equals(b.subarray(0, nb));
      if (same) close();
      else {
        open ??= { offset: off, parts: [] };
        open.parts.push(Buffer.from(b.subarray(0, nb)));
      }
    }
    close();
    return { regions, baseSha256: hash.digest('hex'), unsignedSize, isMsi };
  } finally {
    closeSync(fb);
    closeSync(fu);
  }
}

/** A signed file whose own regions are this small is kept in the `signed` form without comparing. */
const SMALL = 64 * 1024;

export async function makeDelta(
  o: {
    base: string;
    /** The site's unsigned file, when it still exists (a signer that signed in place consumed it). */
    unsigned?: string | undefined;
    signed: string;
    /** The signed file's SHA-256 and size when the caller verified it already (else hashed here). */
    sha256?: string;
    size?: number;
    work: string;
    trust: DeltaTrust;
    /** Assemble it once now to prove it (default true; assembly always checks again). */
    verify?: boolean;
  },
  runner: Runner = defaultRunner,
): Promise<Delta> {
  // the PKCS#7 as the file's tree names it: what `osslsigncode extract-signature` writes, byte for byte
  const read = o.signed.toLowerCase().endsWith('.msi')
    ? readMsiSignature(o.signed)
    : readPeSignature(o.signed);
  if (read.kind !== 'signed')
    throw new SignetError('E_VERIFY_FAILED', `${o.signed}: no signature to keep in a delta (${read.kind})`);
  const signature = Buffer.from(read.pkcs7);
  const sha256 = o.sha256 ?? (await hashFile(o.signed));
  const size = o.size ?? statSync(o.signed).size;
  // streamed, block by block: a site's build never holds its installers in memory
  // both forms are exact (assembly checks the SHA-256); the smaller one is kept
  const direct = diffFiles(o.base, o.signed);
  const bytesOf = (rs: { bytes: Buffer }[]) => rs.reduce((n, r) => n + r.bytes.length, 0);
  const directBytes = bytesOf(direct.regions);
  const attach = directBytes > SMALL && o.unsigned ? diffFiles(o.base, o.unsigned) : undefined;
  if (!attach || directBytes <= bytesOf(attach.regions) + signature.length) {
    const delta: Delta = {
      header: {
        base: direct.baseSha256,
        unsignedSize: size,
        regions: direct.regions.map((r) => ({ offset: r.offset, length: r.bytes.length })),
        signatureLength: 0,
        sha256,
        size,
        form: 'signed',
      },
      regions: direct.regions.map((r) => r.bytes),
      signature: Buffer.alloc(0),
    };
    return o.verify === false ? delta : proven(o, delta, runner);
  }
  const { regions, baseSha256, unsignedSize, isMsi } = attach;
  const delta: Delta = {
    header: {
      base: baseSha256,
      unsignedSize,
      regions: regions.map((r) => ({ offset: r.offset, length: r.bytes.length })),
      signatureLength: signature.length,
      sha256,
      size,
      ...(isMsi ? { msiDse: true } : {}),
      form: 'attach',
    },
    regions: regions.map((r) => r.bytes),
    signature,
  };
  return o.verify === false ? delta : proven(o, delta, runner);
}

/** The delta, once it assembled into exactly the signed file. */
async function proven(o: { base: string; work: string; trust: DeltaTrust }, delta: Delta, runner: Runner) {
  const check = join(o.work, `check-${process.pid}-${Date.now()}`);
  try {
    await assembleDelta(o.base, delta, check, o.work, o.trust, runner);
  } finally {
    rmSync(check, { force: true });
  }
  return delta;
}

export function encodeDelta(d: Delta): Buffer {
  const header = Buffer.from(JSON.stringify(d.header));
  const len = Buffer.alloc(4);
  len.writeUInt32LE(header.length);
  return Buffer.concat([MAGIC, len, header, ...d.regions, d.signature]);
}

export function decodeDelta(b: Buffer): Delta {
  if (b.length < 12 || !b.subarray(0, 8).equals(MAGIC))
    throw new SignetError('E_VERIFY_FAILED', 'not a Signet delta');
  const hlen = b.readUInt32LE(8);
  const header = JSON.parse(b.subarray(12, 12 + hlen).toString('utf8')) as DeltaHeader;
  let at = 12 + hlen;
  const regions = header.regions.map((r) => {
    const part = b.subarray(at, at + r.length);
    at += r.length;
    return Buffer.from(part);
  });
  const signature = Buffer.from(b.subarray(at, at + header.signatureLength));
  if (at + header.signatureLength !== b.length)
    throw new SignetError('E_VERIFY_FAILED', 'a delta of the wrong length');
  return { header, regions, signature };
}

/** Writes the signed file of `delta` to `out`; throws unless its SHA-256 is the recorded one. */
export async function assembleDelta(
  baseFile: string,
  delta: Delta,
  out: string,
  work: string,
  trust: DeltaTrust,
  runner: Runner = defaultRunner,
): Promise<void> {
  const unsigned = join(work, `unsigned-${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`);
  const sig = `${unsigned}.sig`;
  try {
    copyFileSync(baseFile, unsigned);
    const fd = openSync(unsigned, 'r+');
    try {
      // the site's file may be shorter than the base (an MSI whose streams shrank)
      ftruncateSync(fd, delta.header.unsignedSize);
      delta.header.regions.forEach((r, i) => {
        writeSync(fd, delta.regions[i]!, 0, r.length, r.offset);
      });
    } finally {
      closeSync(fd);
    }
    // the base may be longer than the unsigned file only if the delta was made wrongly
    if (statSync(unsigned).size !== delta.header.unsignedSize)
      throw new SignetError('E_VERIFY_FAILED', 'the delta does not fit its base');
    rmSync(out, { force: true });
    if (delta.header.form === 'signed') {
      renameSync(unsigned, out);
      // what attach-signature checks: the signature, its chain and timestamp, the pinned signer
      const r = await runner.run('osslsigncode', ['verify', ...trustArgs(trust), '-in', out], {
        allowFailure: true,
        timeoutMs: 120_000,
        label: 'osslsigncode verify',
        env: osslsigncodeEnv(),
      });
      if (r.exitCode !== 0) {
        rmSync(out, { force: true });
        throw new SignetError(
          'E_VERIFY_FAILED',
          'the assembled file does not verify against the trust settings',
        );
      }
    } else {
      writeFileSync(sig, delta.signature);
      await runner.run(
        'osslsigncode',
        [
          'attach-signature',
          ...trustArgs(trust),
          ...(delta.header.msiDse ? ['-add-msi-dse'] : []),
          '-sigin',
          sig,
          '-in',
          unsigned,
          '-out',
          out,
        ],
        { outputs: [out], env: osslsigncodeEnv() },
      );
    }
    const got = await hashFile(out);
    if (got !== delta.header.sha256) {
      rmSync(out, { force: true });
      throw new SignetError(
        'E_VERIFY_FAILED',
        `the assembled file is not the signed output (${got} ≠ ${delta.header.sha256})`,
      );
    }
  } finally {
    rmSync(unsigned, { force: true });
    rmSync(sig, { force: true });
  }
}

async function hashFile(path: string): Promise<string> {
  const h = createHash('sha256');
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(1 << 20);
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, null);
      if (!n) break;
      h.update(buf.subarray(0, n));
    }
  } finally {
    closeSync(fd);
  }
  return h.digest('hex');
}
