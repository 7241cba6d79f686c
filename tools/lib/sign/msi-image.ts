/**
 * An MSI (Compound File) as Authenticode sees it: the MsiDigitalSignatureEx pre-hash (each
 * stream's name, size, state and times, the root's CLSID and state), the content digest (that
 * pre-hash, then every stream's bytes in osslsigncode's name order, then the root CLSID), and
 * writing a signed copy by adding the two signature streams to the file — new sectors at its
 * end, the allocation tables, directory entries linked into the root's tree — instead of
 * rewriting the whole file as osslsigncode does. Files with storages, orphan entries or a
 * signature already are left to osslsigncode (undefined). Hand-written over cfb.ts: no
 * maintained npm library writes a stream into an existing Compound File in place.
 */
import { createHash, type Hash } from 'node:crypto';
import { closeSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import { type CompoundDirectory, CompoundFileError, fileSource, readCompoundDirectory } from '../cfb.ts';
import { hashFileParts } from '../exec/runner.ts';
import { feedParts, type HashPart } from '../exec/spawn-helper.ts';
import { DIGITAL_SIGNATURE, DIGITAL_SIGNATURE_EX } from './der.ts';
import { placeCopy } from './pe-image.ts';

const FREE = 0xffffffff;
const END_OF_CHAIN = 0xfffffffe;
const FAT_SECTOR = 0xfffffffd;
const DIFAT_SECTOR = 0xfffffffc;
const HEADER_DIFAT = 109;
const NO_STREAM = 0xffffffff;
const MINI = 64;

export interface MsiImageDigest {
  digest: Buffer;
  /** The MsiDigitalSignatureEx stream: the pre-hash's digest. */
  dse: Buffer;
  size: number;
  directory: CompoundDirectory;
  /** Bytes of the digest taken from the base's shared state instead of read again (0 without one). */
  sharedBytes: number;
}

const entryAt = (dir: Buffer, index: number) => dir.subarray(index * 128, index * 128 + 128);

/** The raw name of an entry, its terminating NUL included (osslsigncode's sort key). */
function rawName(entry: Buffer): Buffer {
  return entry.subarray(0, Math.min(64, entry.readUInt16LE(0x40)));
}

/** osslsigncode's dirent_cmp_hash: memcmp of the raw names over the shorter, then the longer first. */
function hashOrder(a: Buffer, b: Buffer): number {
  const n = Math.min(a.length, b.length);
  const d = Buffer.compare(a.subarray(0, n), b.subarray(0, n));
  return d !== 0 ? d : a.length > b.length ? -1 : 1;
}

/** osslsigncode's order of two raw stream names (JS strings, as the directory holds them). */
export function msiHashOrder(a: string, b: string): number {
  return hashOrder(Buffer.from(`${a}\u0000`, 'utf16le'), Buffer.from(`${b}\u0000`, 'utf16le'));
}

/**
 * What copies of a base MSI share with it: the streams they hold unchanged that come first in the
 * hash order (a release's agent cabinet, named to sort first), and the content digest's state after
 * them. That digest starts with the pre-hash, which covers every stream's size, so the state is kept
 * per pre-hash: copies whose per-site streams have the same sizes (site codes of one length) share
 * it; the first of each computes it.
 */
export interface MsiSharedStreams {
  algorithm: string;
  /** The base, whose bytes the states hash. */
  path: string;
  /** The streams, in hash order, as the base's directory has them, and their file ranges there. */
  streams: { name: string; start: number; size: number; parts: HashPart[] }[];
  /** Bytes of those streams. */
  bytes: number;
  /** Digest states after the streams, by pre-hash (hex), the most recently used last. */
  states: Map<string, Hash>;
}

/** Streams left to hash after a shared state, at most this many bytes, are hashed in-process. */
const IN_PROCESS_REST = 1 << 20;
/** Pre-hashes (size classes of per-site streams) a base keeps a state for. */
const STATES_PER_BASE = 16;

/**
 * The streams of `path` (a base MSI) its copies hold as they are (`unchanged`, raw names) that come
 * first in the hash order; undefined when there is none, or the file is not one the in-process
 * writer handles.
 */
export function msiSharedStreams(
  path: string,
  algorithm: string,
  unchanged: readonly string[],
): MsiSharedStreams | undefined {
  const planned = plan(path, algorithm);
  if (!planned) return undefined;
  const keep = new Set(unchanged);
  const streams: MsiSharedStreams['streams'] = [];
  for (const c of planned.streams) {
    if (!keep.has(c.name)) break;
    const parts = c.parts();
    if (!parts) return undefined;
    streams.push({ name: c.name, start: c.start, size: c.size, parts });
  }
  if (!streams.length) return undefined;
  const bytes = streams.reduce((n, x) => n + x.size, 0);
  return { algorithm, path, streams, bytes, states: new Map() };
}

/** The digest state after the pre-hash `dse` and the shared streams (computed once per pre-hash). */
function sharedState(shared: MsiSharedStreams, dse: Buffer): Hash {
  const key = dse.toString('hex');
  let state = shared.states.get(key);
  if (state) shared.states.delete(key);
  else {
    state = createHash(shared.algorithm).update(dse);
    feedParts(
      state,
      shared.path,
      shared.streams.flatMap((x) => x.parts),
    );
  }
  shared.states.set(key, state);
  while (shared.states.size > STATES_PER_BASE)
    shared.states.delete(shared.states.keys().next().value as string);
  return state;
}

/**
 * The digest of an unsigned MSI's content (osslsigncode `sign -add-msi-dse`), or undefined when
 * the file is not one the in-process writer handles. With `shared` (of the base the file is a copy
 * of), the shared streams are not read again when their directory entries are the base's (bytes
 * that differ make a signature that does not verify, never a wrong one that ships).
 */
export async function msiImageDigest(
  path: string,
  algorithm: string,
  shared?: MsiSharedStreams,
): Promise<MsiImageDigest | undefined> {
  const planned = plan(path, algorithm);
  if (!planned) return undefined;
  const partsFrom = (k: number): HashPart[] | undefined => {
    const out: HashPart[] = k ? [] : [planned.dse];
    for (const c of planned.streams.slice(k)) {
      const p = c.parts();
      if (!p) return undefined;
      out.push(...p);
    }
    out.push(planned.clsid);
    return out;
  };
  const result = (hex: string, sharedBytes = 0) => ({
    digest: Buffer.from(hex, 'hex'),
    dse: planned.dse,
    size: planned.size,
    directory: planned.directory,
    sharedBytes,
  });
  if (
    shared &&
    shared.algorithm === algorithm &&
    shared.streams.every((b, i) => {
      const c = planned.streams[i];
      return c?.name === b.name && c.start === b.start && c.size === b.size;
    })
  ) {
    const rest = partsFrom(shared.streams.length);
    if (!rest) return undefined;
    if (rest.reduce((n, x) => n + (Array.isArray(x) ? x[1] : 0), 0) <= IN_PROCESS_REST) {
      const hash = sharedState(shared, planned.dse).copy();
      feedParts(hash, path, rest);
      return result(hash.digest('hex'), shared.bytes);
    }
  }
  const parts = partsFrom(0);
  if (!parts) return undefined;
  // the streams' bytes are read and hashed where the batch's other core is (exec/runner.ts)
  return result(await hashFileParts(path, algorithm, parts));
}

interface Planned {
  dse: Buffer;
  /** Each stream in hash order: its entry's start and size, and what of it is hashed. */
  streams: { name: string; start: number; size: number; parts: () => HashPart[] | undefined }[];
  clsid: Buffer;
  size: number;
  directory: CompoundDirectory;
}

/**
 * What the content digest hashes, in order: the pre-hash, each stream (file ranges, or the bytes
 * of a mini stream), the root CLSID.
 */
function plan(path: string, algorithm: string): Planned | undefined {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    let directory: CompoundDirectory;
    try {
      directory = readCompoundDirectory(fileSource(fd));
    } catch (e) {
      if (e instanceof CompoundFileError) return undefined;
      throw e;
    }
    const s = directory.structure;
    if (size % s.sectorSize || directory.orphans.length) return undefined;
    if (s.top.some((e) => e.type !== 2)) return undefined; // storages: osslsigncode recurses
    if (s.top.some((e) => e.name === DIGITAL_SIGNATURE || e.name === DIGITAL_SIGNATURE_EX)) return undefined;
    const root = entryAt(s.dir, 0);
    const children = s.top
      .map((e) => ({ ...e, entry: entryAt(s.dir, e.index) }))
      .sort((a, b) => hashOrder(rawName(a.entry), rawName(b.entry)));
    const pre = createHash(algorithm);
    pre.update(root.subarray(0x50, 0x64)); // CLSID, state bits
    for (const c of children) {
      const name = rawName(c.entry);
      pre.update(name.subarray(0, Math.max(0, name.length - 2)));
      pre.update(c.entry.subarray(0x78, 0x7c)); // size (low 32 bits)
      pre.update(c.entry.subarray(0x60, 0x74)); // state bits, creation and modification times
    }
    const streams = children.map((c) => {
      const length = c.entry.readUInt32LE(0x78);
      const parts = (): HashPart[] | undefined => {
        if (length === 0) return [];
        if (length < directory.miniCutoff) return [directory.streams.get(c.name)!()];
        // runs of consecutive sectors, the last one cut at the stream's end
        const layout = directory.layouts.get(c.name)!();
        const out: [number, number][] = [];
        let left = length;
        for (const at of layout.units) {
          const n = Math.min(layout.unit, left);
          const last = out[out.length - 1];
          if (last && last[0] + last[1] === at) last[1] += n;
          else out.push([at, n]);
          left -= n;
          if (left === 0) break;
        }
        return left > 0 ? undefined : out;
      };
      return { name: c.name, start: c.entry.readUInt32LE(0x74), size: length, parts };
    });
    return {
      dse: pre.digest(),
      streams,
      clsid: Buffer.from(root.subarray(0x50, 0x60)),
      size,
      directory,
    };
  } finally {
    closeSync(fd);
  }
}

/** The CFB order of names in a storage's tree: shorter first, then by upper-cased code units. */
function treeOrder(a: string, b: string): number {
  if (a.length !== b.length) return a.length - b.length;
  const x = a.toUpperCase();
  const y = b.toUpperCase();
  return x < y ? -1 : x > y ? 1 : 0;
}

/**
 * Writes `output` (must not exist): `input`, whose digest `d` is, with the MsiDigitalSignatureEx
 * stream and the DigitalSignature stream (`pkcs7`) added.
 */
export function writeSignedMsi(
  input: string,
  output: string,
  d: MsiImageDigest,
  pkcs7: Buffer,
  consume = false,
): void {
  const s = d.directory.structure;
  const ss = s.sectorSize;
  const per = ss / 4;
  const miniCutoff = d.directory.miniCutoff;
  const fd = openSync(input, 'r');
  const sectors = new Map<number, Buffer>();
  let next: number;
  try {
    if (fstatSync(fd).size !== d.size) throw new Error(`${input} changed while it was signed`);
    next = d.size / ss - 1;
    /** A sector to change: its current bytes (new sectors are zeros). */
    const sector = (n: number): Buffer => {
      let b = sectors.get(n);
      if (!b) {
        b = Buffer.alloc(ss);
        if (n < d.size / ss - 1) readSync(fd, b, 0, ss, (n + 1) * ss);
        sectors.set(n, b);
      }
      return b;
    };
    // the FAT entries this signature changes (the rest are the file's, s.fat)
    const fat = new Map<number, number>();
    const setFat = (n: number, v: number) => {
      fat.set(n, v);
    };
    const fatAt = (n: number) => fat.get(n) ?? s.fat[n] ?? FREE;
    /** `count` new sectors at the end of the file, chained after `after` (or not). */
    const append = (count: number, after?: number): number[] => {
      const out: number[] = [];
      for (let i = 0; i < count; i++) {
        const n = next++;
        setFat(n, END_OF_CHAIN);
        const prev = out.length ? out[out.length - 1] : after;
        if (prev !== undefined) setFat(prev, n);
        out.push(n);
        sector(n);
      }
      return out;
    };
    const dir = Buffer.from(s.dir);
    const dirChain = [...s.dirChain];
    const header = Buffer.from(s.header);

    // the streams' data: the DSE (a digest) is mini, the signature mini or regular by its size
    const streams = [
      { name: DIGITAL_SIGNATURE_EX, data: d.dse },
      { name: DIGITAL_SIGNATURE, data: pkcs7 },
    ];
    const root = entryAt(dir, 0);
    // new mini sectors go after every used one and after the mini stream's end
    const miniFat = Array.from(s.miniFat);
    let miniUsed = Math.ceil(root.readUInt32LE(0x78) / MINI);
    for (let m = miniFat.length - 1; m >= miniUsed; m--)
      if (miniFat[m] !== FREE) {
        miniUsed = m + 1;
        break;
      }
    const rootChain = [...s.rootChain];
    const placed: { name: string; start: number; size: number }[] = [];
    for (const st of streams) {
      if (st.data.length >= miniCutoff) {
        const chain = append(Math.ceil(st.data.length / ss));
        chain.forEach((n, i) => {
          st.data.copy(sector(n), 0, i * ss, Math.min(st.data.length, (i + 1) * ss));
        });
        placed.push({ name: st.name, start: chain[0]!, size: st.data.length });
        continue;
      }
      const count = Math.ceil(st.data.length / MINI);
      const first = miniUsed;
      for (let i = 0; i < count; i++) {
        const m = first + i;
        while (miniFat.length <= m) miniFat.push(FREE);
        miniFat[m] = i === count - 1 ? END_OF_CHAIN : m + 1;
      }
      miniUsed += count;
      // the mini stream grows into new sectors of the root's chain
      const needed = Math.ceil((miniUsed * MINI) / ss);
      if (needed > rootChain.length) {
        const added = append(needed - rootChain.length, rootChain[rootChain.length - 1]);
        if (!rootChain.length) root.writeUInt32LE(added[0]!, 0x74);
        rootChain.push(...added);
      }
      for (let i = 0; i < count; i++) {
        const m = first + i;
        const at = (m * MINI) % ss;
        st.data.copy(
          sector(rootChain[Math.floor((m * MINI) / ss)]!),
          at,
          i * MINI,
          Math.min(st.data.length, (i + 1) * MINI),
        );
      }
      placed.push({ name: st.name, start: first, size: st.data.length });
    }
    root.writeUInt32LE(miniUsed * MINI, 0x78);
    root.writeUInt32LE(0, 0x7c);

    // the mini FAT, grown by whole sectors
    const miniFatChain = [...s.miniFatChain];
    const miniFatSectors = Math.ceil(miniFat.length / per);
    if (miniFatSectors > miniFatChain.length) {
      const added = append(miniFatSectors - miniFatChain.length, miniFatChain[miniFatChain.length - 1]);
      if (!miniFatChain.length) header.writeUInt32LE(added[0]!, 0x3c);
      miniFatChain.push(...added);
    }
    header.writeUInt32LE(miniFatChain.length, 0x40);
    miniFatChain.forEach((n, k) => {
      const b = sector(n);
      for (let i = 0; i < per; i++) b.writeUInt32LE(miniFat[k * per + i] ?? FREE, i * 4);
    });

    // two directory entries: free ones, else a new directory sector
    const free: number[] = [];
    for (let i = 1; i < dir.length / 128 && free.length < placed.length; i++)
      if (entryAt(dir, i).readUInt8(0x42) === 0) free.push(i);
    let dirBytes = dir;
    while (free.length < placed.length) {
      const [n] = append(1, dirChain[dirChain.length - 1]);
      dirChain.push(n!);
      const fresh = Buffer.alloc(ss);
      for (let o = 0; o < ss; o += 128) {
        fresh.writeUInt32LE(NO_STREAM, o + 0x44);
        fresh.writeUInt32LE(NO_STREAM, o + 0x48);
        fresh.writeUInt32LE(NO_STREAM, o + 0x4c);
      }
      const base = dirBytes.length / 128;
      dirBytes = Buffer.concat([dirBytes, fresh]);
      for (let i = 0; i < ss / 128 && free.length < placed.length; i++) free.push(base + i);
    }
    const nameOf = (i: number) => {
      const e = entryAt(dirBytes, i);
      return e.toString('utf16le', 0, Math.max(0, Math.min(64, e.readUInt16LE(0x40)) - 2));
    };
    placed.forEach((p, k) => {
      const i = free[k]!;
      const e = entryAt(dirBytes, i);
      e.fill(0);
      const name = Buffer.from(`${p.name}\u0000`, 'utf16le');
      name.copy(e, 0);
      e.writeUInt16LE(name.length, 0x40);
      e.writeUInt8(2, 0x42); // stream
      e.writeUInt8(1, 0x43); // black
      e.writeUInt32LE(NO_STREAM, 0x44);
      e.writeUInt32LE(NO_STREAM, 0x48);
      e.writeUInt32LE(NO_STREAM, 0x4c);
      e.writeUInt32LE(p.start, 0x74);
      e.writeUInt32LE(p.size, 0x78);
      // linked into the root storage's tree as a leaf
      const rootEntry = entryAt(dirBytes, 0);
      if (rootEntry.readUInt32LE(0x4c) === NO_STREAM) {
        rootEntry.writeUInt32LE(i, 0x4c);
        return;
      }
      for (let node = rootEntry.readUInt32LE(0x4c), guard = 0; guard < dirBytes.length / 128; guard++) {
        const c = treeOrder(p.name, nameOf(node));
        if (c === 0) throw new Error(`${p.name} is in the file already`);
        const link = c < 0 ? 0x44 : 0x48;
        const ne = entryAt(dirBytes, node);
        const child = ne.readUInt32LE(link);
        if (child === NO_STREAM) {
          ne.writeUInt32LE(i, link);
          return;
        }
        node = child;
      }
      throw new Error('the directory tree has a loop');
    });
    dirChain.forEach((n, k) => {
      dirBytes.copy(sector(n), 0, k * ss, (k + 1) * ss);
    });
    if (ss === 4096) header.writeUInt32LE(dirChain.length, 0x28);

    // the FAT covers every sector, its own and the DIFAT's new ones included; the header lists
    // the first 109 FAT sectors, DIFAT sectors (per - 1 each, then the next one's number) the rest
    const fatSectors = [...s.fatSectors];
    const difat = [...s.difatChain];
    for (;;) {
      const needDifat = Math.max(0, Math.ceil((fatSectors.length - HEADER_DIFAT) / (per - 1)));
      if (difat.length < needDifat) {
        const n = next++;
        difat.push(n);
        setFat(n, DIFAT_SECTOR);
        sector(n);
      } else if (fatSectors.length * per < next) {
        const n = next++;
        fatSectors.push(n);
        setFat(n, FAT_SECTOR);
        sector(n);
      } else break;
    }
    header.writeUInt32LE(fatSectors.length, 0x2c);
    header.writeUInt32LE(difat[0] ?? END_OF_CHAIN, 0x44);
    header.writeUInt32LE(difat.length, 0x48);
    for (let i = 0; i < HEADER_DIFAT; i++) header.writeUInt32LE(fatSectors[i] ?? FREE, 0x4c + i * 4);
    difat.forEach((n, k) => {
      const b = sector(n);
      for (let j = 0; j < per - 1; j++)
        b.writeUInt32LE(fatSectors[HEADER_DIFAT + k * (per - 1) + j] ?? FREE, j * 4);
      b.writeUInt32LE(difat[k + 1] ?? END_OF_CHAIN, (per - 1) * 4);
    });
    // only the FAT sectors whose entries changed are written (not read: their bytes are the entries)
    const touched = new Set<number>();
    for (const n of fat.keys()) touched.add(Math.floor(n / per));
    for (let k = s.fatSectors.length; k < fatSectors.length; k++) touched.add(k);
    for (const k of touched) {
      const n = fatSectors[k];
      if (n === undefined) throw new Error('a FAT entry beyond the FAT');
      const b = sectors.get(n) ?? Buffer.alloc(ss);
      sectors.set(n, b);
      for (let i = 0; i < per; i++) b.writeUInt32LE(fatAt(k * per + i), i * 4);
    }
    sectors.set(-1, header);
  } finally {
    closeSync(fd);
  }
  placeCopy(input, output, consume);
  const out = openSync(output, 'r+');
  try {
    for (const n of [...sectors.keys()].sort((a, b) => a - b)) {
      const b = sectors.get(n)!;
      writeSync(out, b, 0, n === -1 ? 512 : ss, (n + 1) * ss);
    }
  } finally {
    closeSync(out);
  }
}
