/**
 * A PE image as Authenticode sees it: where the header keeps what signing changes, the image
 * digest (every byte but the CheckSum, the security data directory and the certificate table,
 * zero-padded to 8 bytes — as osslsigncode and Windows compute it), the PE checksum, and writing
 * a signed copy (padding, one WIN_CERTIFICATE, the directory and the checksum) without another
 * process. The digest of a release's shared prefix (an installer stub every site's file starts
 * with) is computed once and continued per file.
 */
import { createHash, type Hash } from 'node:crypto';
import {
  closeSync,
  constants,
  copyFileSync,
  existsSync,
  fstatSync,
  openSync,
  readSync,
  renameSync,
  statSync,
  writeSync,
} from 'node:fs';

/** Where the PE header keeps what signing changes, and the certificate table. */
export interface PeLayout {
  /** File offset of the optional header's CheckSum (4 bytes). */
  checksumAt: number;
  /** File offset of DataDirectory[4] (8 bytes: offset, size). */
  securityDirAt: number;
  /** File offset of the certificate table, 0 when unsigned. */
  certOffset: number;
  certSize: number;
  /** Where the overlay record must end: the certificate table, else the end of the file. */
  end: number;
}

/**
 * The PE layout by the rules of the installer script: `head` is (up to) the first 4096 bytes,
 * e_lfanew in [0x40, 3584], PE32 or PE32+, at least 5 data directories, a certificate table that
 * lies inside the file. undefined when any rule fails.
 */
export function peLayout(head: Buffer, fileSize: number): PeLayout | undefined {
  if (fileSize > 0x7fff_ffff || head.length < 0x40) return undefined;
  if (head.readUInt16LE(0) !== 0x5a4d) return undefined;
  const pe = head.readInt32LE(0x3c);
  if (pe < 0x40 || pe > 3584 || pe + 264 > head.length) return undefined;
  if (head.readUInt32LE(pe) !== 0x4550) return undefined;
  const optSize = head.readUInt16LE(pe + 20);
  const opt = pe + 24;
  const magic = head.readUInt16LE(opt);
  const [countAt, dirAt] = magic === 0x20b ? [108, 144] : magic === 0x10b ? [92, 128] : [0, 0];
  if (!dirAt || optSize < dirAt + 8) return undefined;
  if (head.readInt32LE(opt + countAt) < 5) return undefined;
  const certOffset = head.readInt32LE(opt + dirAt);
  const certSize = head.readInt32LE(opt + dirAt + 4);
  if (certOffset !== 0 && (certOffset < 0 || certSize < 0 || certOffset + certSize > fileSize))
    return undefined;
  return {
    checksumAt: opt + 64,
    securityDirAt: opt + dirAt,
    certOffset,
    certSize,
    end: certOffset === 0 ? fileSize : certOffset,
  };
}

const HEAD_BYTES = 4096;
const CHUNK = 1024 * 1024;

/**
 * An unsigned PE as the known prefix of its signed copies' file hash (exec/spawn-helper.ts
 * KnownPrefix): all of it, but the CheckSum and security directory that signing fills in.
 */
export function peKnownPrefix(
  path: string,
): { path: string; length: number; except: [number, number][] } | undefined {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const layout = unsignedLayout(fd, size);
    return (
      layout && {
        path,
        length: size,
        except: [
          [layout.checksumAt, 4],
          [layout.securityDirAt, 8],
        ],
      }
    );
  } finally {
    closeSync(fd);
  }
}
let shared: Buffer | undefined;

/** The digest and checksum state of a file's first `length` bytes (header fields excluded). */
export interface PeDigestState {
  algorithm: string;
  hash: Hash;
  /** Sum of the 16-bit little-endian words so far, CheckSum and security directory counted as 0. */
  words: number;
  /** Bytes consumed (even, except after the last byte of a file). */
  length: number;
  layout: PeLayout;
}

/** The image digest of an unsigned PE and what writing its signed copy needs. */
export interface PeImageDigest {
  digest: Buffer;
  words: number;
  /** The input's size, and where the certificate table goes (size padded to 8). */
  size: number;
  tableAt: number;
  layout: PeLayout;
  /** Bytes of the digest taken from the prefix state instead of read again (0 without one). */
  sharedBytes: number;
}

/** The layout of an unsigned PE whose header fields lie where the digest can skip them, or undefined. */
function unsignedLayout(fd: number, size: number): PeLayout | undefined {
  const head = Buffer.alloc(Math.min(HEAD_BYTES, size));
  readSync(fd, head, 0, head.length, 0);
  const layout = peLayout(head, size);
  if (layout?.certOffset !== 0 || layout.certSize !== 0) return undefined;
  if (layout.checksumAt % 2 || layout.securityDirAt % 2) return undefined;
  return layout;
}

function sumWords(buf: Buffer, from: number, to: number): number {
  let s = 0;
  const even = to - ((to - from) % 2);
  for (let i = from; i < even; i += 2) s += (buf[i] as number) | ((buf[i + 1] as number) << 8);
  if (even < to) s += buf[even] as number; // a last odd byte pairs with a zero pad byte
  return s;
}

/** Feeds bytes [state.length, end) of `fd` into the state (state.length is even, or end is reached). */
function feed(state: PeDigestState, fd: number, end: number): void {
  shared ??= Buffer.allocUnsafe(CHUNK);
  const buf = shared;
  const { checksumAt, securityDirAt } = state.layout;
  while (state.length < end) {
    const at = state.length;
    const n = readSync(fd, buf, 0, Math.min(CHUNK, end - at), at);
    if (n <= 0) throw new Error(`short read at ${at}`);
    const chunk = buf.subarray(0, n);
    const skips = [
      [checksumAt, 4],
      [securityDirAt, 8],
    ].filter(([o = 0, l = 0]) => o < at + n && o + l > at);
    if (!skips.length) {
      state.hash.update(chunk);
      state.words += sumWords(chunk, 0, n);
    } else {
      // the header fields: hashed around, counted as zero (offsets are even, fields whole words)
      let pos = 0;
      for (const [o = 0, l = 0] of skips) {
        const from = Math.max(0, o - at);
        const to = Math.min(n, o + l - at);
        state.hash.update(chunk.subarray(pos, from));
        state.words += sumWords(chunk, pos, from);
        pos = to;
      }
      state.hash.update(chunk.subarray(pos));
      state.words += sumWords(chunk, pos, n);
    }
    state.length += n;
  }
}

function fold(words: number): number {
  return words === 0 ? 0 : ((words - 1) % 0xffff) + 1;
}

/**
 * The digest state of the first `length` bytes (rounded down to even) of an unsigned PE, to
 * continue per file with `peImageDigest(…, prefix)`; undefined when the file is no unsigned PE.
 */
export function pePrefixState(path: string, algorithm: string, length?: number): PeDigestState | undefined {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const layout = unsignedLayout(fd, size);
    if (!layout) return undefined;
    const end = Math.min(size, length ?? size) & ~1;
    if (end < layout.securityDirAt + 8) return undefined;
    const state: PeDigestState = { algorithm, hash: createHash(algorithm), words: 0, length: 0, layout };
    feed(state, fd, end);
    return state;
  } finally {
    closeSync(fd);
  }
}

/**
 * The Authenticode image digest of an unsigned PE (undefined when it is not one). With `prefix`,
 * the file is taken to start with the bytes the prefix state was computed from (a wrong prefix
 * makes a digest the file does not have, which verification refuses).
 */
export function peImageDigest(
  path: string,
  algorithm: string,
  prefix?: PeDigestState,
): PeImageDigest | undefined {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const layout = unsignedLayout(fd, size);
    if (!layout) return undefined;
    let state: PeDigestState;
    const usable =
      prefix &&
      prefix.algorithm === algorithm &&
      prefix.length <= size &&
      prefix.layout.checksumAt === layout.checksumAt &&
      prefix.layout.securityDirAt === layout.securityDirAt;
    if (usable) state = { ...prefix, hash: prefix.hash.copy(), layout };
    else state = { algorithm, hash: createHash(algorithm), words: 0, length: 0, layout };
    const sharedBytes = state.length;
    feed(state, fd, size);
    const tableAt = (size + 7) & ~7;
    if (tableAt > size) state.hash.update(Buffer.alloc(tableAt - size));
    return { digest: state.hash.digest(), words: state.words, size, tableAt, layout, sharedBytes };
  } finally {
    closeSync(fd);
  }
}

/** The WIN_CERTIFICATE holding `pkcs7`, padded to 8 bytes. */
export function winCertificate(pkcs7: Buffer): Buffer {
  const length = (8 + pkcs7.length + 7) & ~7;
  const out = Buffer.alloc(length);
  out.writeUInt32LE(length, 0);
  out.writeUInt16LE(0x200, 4); // WIN_CERT_REVISION_2_0
  out.writeUInt16LE(2, 6); // WIN_CERT_TYPE_PKCS_SIGNED_DATA
  pkcs7.copy(out, 8);
  return out;
}

/** `output` (must not exist) as a copy of `input`, or `input` itself renamed when it may be consumed. */
export function placeCopy(input: string, output: string, consume: boolean): void {
  if (consume && !existsSync(output)) {
    try {
      renameSync(input, output);
      return;
    } catch {
      /* another file system: copy */
    }
  }
  copyFileSync(input, output, constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE);
}

/**
 * Writes `output` (must not exist; with `consume`, made from `input` itself): `input` (whose digest `d` is), zero padding, the certificate
 * table holding `pkcs7`, the security directory pointing at it and the PE checksum of the result.
 */
export function writeSignedPe(
  input: string,
  output: string,
  d: PeImageDigest,
  pkcs7: Buffer,
  consume = false,
): void {
  const st = statSync(input);
  if (st.size !== d.size) throw new Error(`${input} changed while it was signed`);
  placeCopy(input, output, consume);
  const table = winCertificate(pkcs7);
  const dir = Buffer.alloc(8);
  dir.writeUInt32LE(d.tableAt, 0);
  dir.writeUInt32LE(table.length, 4);
  const total = d.tableAt + table.length;
  const sum = fold(d.words + sumWords(dir, 0, 8) + sumWords(table, 0, table.length));
  const checksum = Buffer.alloc(4);
  checksum.writeUInt32LE((sum + total) >>> 0, 0);
  const fd = openSync(output, 'r+');
  try {
    const tail = Buffer.concat([Buffer.alloc(d.tableAt - d.size), table]);
    writeSync(fd, tail, 0, tail.length, d.size);
    writeSync(fd, dir, 0, 8, d.layout.securityDirAt);
    writeSync(fd, checksum, 0, 4, d.layout.checksumAt);
  } finally {
    closeSync(fd);
  }
}
