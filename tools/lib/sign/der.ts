/**
 * Just enough DER and PE parsing to read an Authenticode signature without another process:
 * the PKCS#7 blob of a PE file (security data directory), the certificates of a SignedData, and
 * the leaf (signer) certificate by issuer serial. Anything malformed returns undefined.
 */
import { X509Certificate } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { type CompoundDirectory, CompoundFileError, fileSource, readCompoundDirectory } from '../cfb.ts';

export interface DerNode {
  tag: number;
  /** Offset of the tag byte. */
  start: number;
  /** Offset of the content. */
  contentStart: number;
  /** Offset after the content. */
  end: number;
}

export function readNode(buf: Uint8Array, offset: number, limit = buf.length): DerNode | undefined {
  if (offset + 2 > limit) return undefined;
  const tag = buf[offset] as number;
  if ((tag & 0x1f) === 0x1f) return undefined; // high tag numbers are not used here
  let pos = offset + 1;
  let len = buf[pos++] as number;
  if (len === 0x80) return undefined; // indefinite length is not DER
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n > 4 || pos + n > limit) return undefined;
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + (buf[pos++] as number);
  }
  const end = pos + len;
  if (end > limit) return undefined;
  return { tag, start: offset, contentStart: pos, end };
}

export function children(buf: Uint8Array, node: DerNode): DerNode[] {
  const out: DerNode[] = [];
  let pos = node.contentStart;
  while (pos < node.end) {
    const child = readNode(buf, pos, node.end);
    if (!child) return out;
    out.push(child);
    pos = child.end;
  }
  return out;
}

function bytesToHex(buf: Uint8Array, from: number, to: number): string {
  return Buffer.from(buf.subarray(from, to)).toString('hex');
}

const OID_SIGNED_DATA = '2a864886f70d010702';

export interface ParsedPkcs7 {
  certificates: X509Certificate[];
  /** Serial numbers (uppercase hex, no leading zeros) of the SignerInfos' certificates. */
  signerSerials: string[];
}

function normSerial(hex: string): string {
  return hex.toUpperCase().replace(/^0+(?=.)/, '');
}

/** Parses a DER ContentInfo(SignedData): its certificates and signer serials. */
export function parsePkcs7(der: Uint8Array): ParsedPkcs7 | undefined {
  const ci = readNode(der, 0);
  if (ci?.tag !== 0x30) return undefined;
  const [oid, explicit] = children(der, ci);
  if (oid?.tag !== 0x06 || bytesToHex(der, oid.contentStart, oid.end) !== OID_SIGNED_DATA) return undefined;
  if (explicit?.tag !== 0xa0) return undefined;
  const sd = children(der, explicit)[0];
  if (sd?.tag !== 0x30) return undefined;
  const parts = children(der, sd);
  const certificates: X509Certificate[] = [];
  const signerSerials: string[] = [];
  for (const part of parts) {
    if (part.tag === 0xa0) {
      for (const c of children(der, part)) {
        if (c.tag !== 0x30) continue;
        try {
          certificates.push(new X509Certificate(Buffer.from(der.subarray(c.start, c.end))));
        } catch {
          /* not a plain X.509 certificate (attribute certs are skipped) */
        }
      }
    }
  }
  const signerInfos = parts[parts.length - 1];
  if (signerInfos && signerInfos.tag === 0x31) {
    for (const si of children(der, signerInfos)) {
      const fields = children(der, si);
      const sid = fields[1];
      if (sid?.tag === 0x30) {
        const serial = children(der, sid)[1];
        if (serial?.tag === 0x02)
          signerSerials.push(normSerial(bytesToHex(der, serial.contentStart, serial.end)));
      }
    }
  }
  return { certificates, signerSerials };
}

/** The signer's (leaf) certificate of a SignedData: the certificate whose serial a SignerInfo names. */
export function leafCertificate(p7: ParsedPkcs7): X509Certificate | undefined {
  for (const serial of p7.signerSerials) {
    const hit = p7.certificates.find((c) => normSerial(c.serialNumber) === serial);
    if (hit) return hit;
  }
  return undefined;
}

/** SHA-256 of the certificate's DER, lowercase hex without separators. */
export function certSha256(cert: X509Certificate): string {
  return cert.fingerprint256.replace(/:/g, '').toLowerCase();
}

function readAt(fd: number, position: number, length: number): Buffer {
  const buf = Buffer.alloc(length);
  const n = readSync(fd, buf, 0, length, position);
  return buf.subarray(0, n);
}

/** A file whose signature cannot be read one way only: it is refused, never half-read. */
export interface AmbiguousSignature {
  kind: 'ambiguous';
  reason: string;
}

export type PeSignature =
  | { kind: 'not-pe' }
  | { kind: 'unsigned' }
  | { kind: 'signed'; pkcs7: Buffer }
  | AmbiguousSignature;

/**
 * Reads the Authenticode blob of a PE file from its security data directory (the certificate
 * table): WIN_CERTIFICATE {dwLength, wRevision=0x200, wCertificateType=2 (PKCS#7)} then the DER.
 * One reading only: the table must be the end of the file and hold exactly one WIN_CERTIFICATE
 * (nested signatures live inside that PKCS#7), whose DER is followed by at most 7 zero bytes of
 * alignment. Anything else could hide a second blob and is 'ambiguous'.
 */
export function readPeSignature(path: string): PeSignature {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const dos = readAt(fd, 0, 64);
    if (dos.length < 64 || dos.readUInt16LE(0) !== 0x5a4d) return { kind: 'not-pe' };
    const peOff = dos.readUInt32LE(0x3c);
    const hdr = readAt(fd, peOff, 24 + 2);
    if (hdr.length < 26 || hdr.readUInt32LE(0) !== 0x00004550) return { kind: 'not-pe' };
    const optOff = peOff + 24;
    const magic = hdr.readUInt16LE(24);
    const ddOff = magic === 0x20b ? optOff + 112 : magic === 0x10b ? optOff + 96 : -1;
    if (ddOff < 0) return { kind: 'not-pe' };
    const count = readAt(fd, ddOff - 4, 4);
    if (count.length < 4 || count.readUInt32LE(0) < 5) return { kind: 'unsigned' };
    const dir = readAt(fd, ddOff + 4 * 8, 8);
    if (dir.length < 8) return { kind: 'not-pe' };
    const offset = dir.readUInt32LE(0);
    const length = dir.readUInt32LE(4);
    if (offset === 0 && length === 0) return { kind: 'unsigned' };
    const ambiguous = (reason: string): AmbiguousSignature => ({ kind: 'ambiguous', reason });
    if (offset === 0 || length < 8 || offset + length > size)
      return ambiguous('the certificate table points outside the file');
    if (offset + length !== size)
      return ambiguous(`${size - offset - length} bytes of data follow the certificate table`);
    const win = readAt(fd, offset, length);
    const dwLength = win.readUInt32LE(0);
    if (win.readUInt16LE(4) !== 0x200 || win.readUInt16LE(6) !== 2)
      return ambiguous('the certificate table holds no PKCS#7 WIN_CERTIFICATE');
    if (dwLength < 8 || dwLength > length) return ambiguous('the WIN_CERTIFICATE length is out of range');
    if (((dwLength + 7) & ~7) !== length)
      return ambiguous('the certificate table holds more than one WIN_CERTIFICATE');
    const node = readNode(win, 8, dwLength);
    if (node?.tag !== 0x30) return ambiguous('the WIN_CERTIFICATE holds no DER signature');
    if (node.end + 8 <= length || win.subarray(node.end).some((b) => b !== 0))
      return ambiguous('data follows the signature inside the certificate table');
    return { kind: 'signed', pkcs7: win.subarray(8, node.end) };
  } finally {
    closeSync(fd);
  }
}

export type MsiSignature =
  | { kind: 'not-msi' }
  | { kind: 'unsigned' }
  | { kind: 'signed'; pkcs7: Buffer }
  | AmbiguousSignature;

const CFB_MAGIC = Buffer.from('d0cf11e0a1b11ae1', 'hex');
/** The streams an MSI signature is made of: each must exist once, in the tree, or not at all. */
export const DIGITAL_SIGNATURE = '\u0005DigitalSignature';
export const DIGITAL_SIGNATURE_EX = '\u0005MsiDigitalSignatureEx';
const SIGNATURE_STREAMS = [DIGITAL_SIGNATURE, DIGITAL_SIGNATURE_EX];

/**
 * Reads the Authenticode blob of an MSI (any compound file) in-process: the PKCS#7 DER is the
 * `\u0005DigitalSignature` stream as the directory *tree* names it (what osslsigncode reads). A
 * malformed directory, or an orphan entry named like a signature stream, is 'ambiguous'.
 */
export function readMsiSignature(path: string): MsiSignature {
  const fd = openSync(path, 'r');
  try {
    if (!readAt(fd, 0, 8).equals(CFB_MAGIC)) return { kind: 'not-msi' };
    let directory: CompoundDirectory;
    try {
      directory = readCompoundDirectory(fileSource(fd));
    } catch (e) {
      if (e instanceof CompoundFileError)
        return { kind: 'ambiguous', reason: `malformed compound file: ${e.message}` };
      throw e;
    }
    const hidden = directory.orphans.filter((n) => SIGNATURE_STREAMS.includes(n));
    if (hidden.length)
      return { kind: 'ambiguous', reason: `an orphan ${JSON.stringify(hidden[0])} directory entry` };
    const signature = directory.streams.get(DIGITAL_SIGNATURE);
    if (!signature) return { kind: 'unsigned' };
    try {
      return { kind: 'signed', pkcs7: signature() };
    } catch (e) {
      if (e instanceof CompoundFileError)
        return { kind: 'ambiguous', reason: `malformed compound file: ${e.message}` };
      throw e;
    }
  } finally {
    closeSync(fd);
  }
}

/** The DER length octets of `n`. */
export function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

/** One DER element: `tag`, the length of the parts together, the parts. */
export function tlv(tag: number, ...parts: Uint8Array[]): Buffer {
  const length = parts.reduce((n, p) => n + p.length, 0);
  return Buffer.concat([Buffer.from([tag]), derLength(length), ...parts]);
}

/** The bytes of a node, tag and length included. */
export function nodeBytes(buf: Uint8Array, node: DerNode): Buffer {
  return Buffer.from(buf.subarray(node.start, node.end));
}

/** The content octets of a node. */
export function nodeContent(buf: Uint8Array, node: DerNode): Buffer {
  return Buffer.from(buf.subarray(node.contentStart, node.end));
}

/** X.690 11.6: the elements of a SET OF in DER order (encodings compared as zero-padded octet strings). */
export function sortSetOf(elements: Buffer[]): Buffer[] {
  return [...elements].sort((a, b) => {
    const n = Math.max(a.length, b.length);
    for (let i = 0; i < n; i++) {
      const d = (a[i] ?? 0) - (b[i] ?? 0);
      if (d) return d;
    }
    return 0;
  });
}

/** The dotted form of an OBJECT IDENTIFIER node's content. */
export function oidOf(buf: Uint8Array, node: DerNode): string {
  const parts: number[] = [];
  let v = 0;
  for (let i = node.contentStart; i < node.end; i++) {
    const b = buf[i] as number;
    v = v * 128 + (b & 0x7f);
    if (!(b & 0x80)) {
      if (!parts.length) parts.push(v < 80 ? Math.floor(v / 40) : 2, v < 80 ? v % 40 : v - 80);
      else parts.push(v);
      v = 0;
    }
  }
  return parts.join('.');
}

/** An OBJECT IDENTIFIER element from its dotted form. */
export function oid(dotted: string): Buffer {
  const [a = 0, b = 0, ...rest] = dotted.split('.').map(Number);
  const out: number[] = [];
  for (const v of [a * 40 + b, ...rest]) {
    const bytes = [v & 0x7f];
    for (let x = Math.floor(v / 128); x > 0; x = Math.floor(x / 128)) bytes.unshift(0x80 | (x & 0x7f));
    out.push(...bytes);
  }
  return tlv(0x06, Buffer.from(out));
}
