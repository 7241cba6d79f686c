/**
 * A read-only Compound File (CFB / OLE2) reader: the container of MSI databases. Streams are read
 * on demand, sector by sector, so the cabinet that makes up most of an MSI is never read unless
 * asked for. Used by the MSI table reader (installers) and to read an MSI's Authenticode
 * signature stream in-process (sign).
 */
import { fstatSync, readSync } from 'node:fs';

export class CompoundFileError extends Error {
  override name = 'CompoundFileError';
}

function bad(what: string): never {
  throw new CompoundFileError(what);
}

const END_OF_CHAIN = 0xfffffffe;
const FREE = 0xffffffff;

/** Random access to the bytes of a compound file (a buffer, or a file read on demand). */
export interface ByteSource {
  size: number;
  /** The bytes at [offset, offset + length), fewer at the end; `into` (if given) may hold them. */
  read(offset: number, length: number, into?: Buffer): Buffer;
}

export function bufferSource(buf: Buffer): ByteSource {
  return {
    size: buf.length,
    read: (offset, length) => buf.subarray(offset, Math.min(offset + length, buf.length)),
  };
}

/** Reads only the sectors asked for: the cabinet (most of an MSI) is never read. */
export function fileSource(fd: number): ByteSource {
  return {
    size: fstatSync(fd).size,
    read(offset, length, into) {
      const want = Math.max(0, Math.min(length, this.size - offset));
      const out = into && into.length >= want ? into.subarray(0, want) : Buffer.allocUnsafe(want); // filled, or cut to what was read
      let done = 0;
      while (done < out.length) {
        const n = readSync(fd, out, done, out.length - done, offset + done);
        if (n <= 0) break;
        done += n;
      }
      return out.subarray(0, done);
    },
  };
}

/**
 * True when two sequences of pieces hold the same bytes (however each is cut). Each iterator may
 * reuse its buffer: a piece is read only until the next one is asked for.
 */
export function sameBytes(a: Iterator<Buffer>, b: Iterator<Buffer>): boolean {
  let x: Buffer | undefined = Buffer.alloc(0);
  let y: Buffer | undefined = Buffer.alloc(0);
  for (;;) {
    if (x?.length === 0) x = next(a);
    if (y?.length === 0) y = next(b);
    if (!x || !y) return !x && !y;
    const n = Math.min(x.length, y.length);
    if (!x.subarray(0, n).equals(y.subarray(0, n))) return false;
    x = x.subarray(n);
    y = y.subarray(n);
  }
}

/** The next non-empty piece, or undefined at the end. */
function next(it: Iterator<Buffer>): Buffer | undefined {
  for (;;) {
    const r = it.next();
    if (r.done) return undefined;
    if (r.value.length) return r.value;
  }
}

/** The directory of a compound file as its tree names it. */
export interface CompoundDirectory {
  /** The streams directly under the root storage, by raw (UTF-16) name, read when asked for. */
  streams: Map<string, () => Buffer>;
  /** Names of allocated entries (streams, storages) that no storage of the tree links. */
  orphans: string[];
  /**
   * Each stream of `streams` in pieces, in order, read into one buffer (`into`, else a new 1 MiB
   * one) that the next piece overwrites: a large stream is hashed or compared without holding it.
   */
  pieces: Map<string, (into?: Buffer) => IterableIterator<Buffer>>;
  /** Where each stream of `streams` lies in the file (for in-place patching), computed when asked for. */
  layouts: Map<string, () => StreamLayout>;
  /** Streams smaller than this live in the mini stream. */
  miniCutoff: number;
  /** The allocation tables and directory as read (for writers that add to the file). */
  structure: CompoundStructure;
}

/** A compound file's header, tables and directory, as read. */
export interface CompoundStructure {
  header: Buffer;
  sectorSize: number;
  /** Sector numbers of the FAT's sectors (header, then DIFAT sectors), and the FAT. */
  fatSectors: number[];
  /** Sector numbers of the DIFAT sectors, in chain order. */
  difatChain: number[];
  fat: Uint32Array;
  dirChain: number[];
  /** The directory's bytes (128 per entry). */
  dir: Buffer;
  miniFat: Uint32Array;
  miniFatChain: number[];
  /** The root entry's chain: the mini stream's sectors. */
  rootChain: number[];
  /** Entries the root storage names directly, by index in `dir`. */
  top: { index: number; name: string; type: number }[];
}

/**
 * The place of one stream in the file: its directory entry, and for each sector (or mini sector)
 * of its chain, in order, the file offset of its bytes and of its FAT (or mini FAT) entry.
 */
export interface StreamLayout {
  /** File offset of the stream's 128-byte directory entry. */
  entryOffset: number;
  size: number;
  mini: boolean;
  /** Bytes per unit: the sector size, or the mini sector size (64). */
  unit: number;
  units: number[];
  chainEntries: number[];
}

/** The streams directly under the root storage, by (raw UTF-16) name, read when asked for. */
export function readCompoundFile(input: Buffer | ByteSource): Map<string, () => Buffer> {
  return readCompoundDirectory(input).streams;
}

const NO_STREAM = 0xffffffff;
const PIECE = 1 << 20;

/**
 * Reads the directory as the tree it is: the root entry (entry 0) names its children through a
 * red-black tree of sibling links, storages name theirs the same way. Throws on a loop, a link out
 * of range or to a free entry, an entry linked twice, and two entries of one name in one storage
 * (names compare case-insensitively, as the format says). Entries no storage links are orphans:
 * no reader that walks the tree (osslsigncode, Windows) sees them; they are listed, not read.
 */
export function readCompoundDirectory(input: Buffer | ByteSource): CompoundDirectory {
  const src = Buffer.isBuffer(input) ? bufferSource(input) : input;
  const buf = src.read(0, 512);
  if (buf.length < 512 || buf.readUInt32LE(0) !== 0xe011cfd0 || buf.readUInt32LE(4) !== 0xe11ab1a1)
    bad('not a compound file');
  const sectorShift = buf.readUInt16LE(0x1e);
  const miniShift = buf.readUInt16LE(0x20);
  if ((sectorShift !== 9 && sectorShift !== 12) || miniShift !== 6) bad('unsupported sector size');
  const sectorSize = 1 << sectorShift;
  const miniSize = 1 << miniShift;
  const sectorCount = Math.floor(src.size / sectorSize);
  const firstDir = buf.readUInt32LE(0x30);
  const miniCutoff = buf.readUInt32LE(0x38);
  const firstMiniFat = buf.readUInt32LE(0x3c);
  const firstDifat = buf.readUInt32LE(0x44);
  const sector = (n: number) => {
    const off = (n + 1) * sectorSize;
    if (off + sectorSize > src.size) bad('sector out of range');
    const data = src.read(off, sectorSize);
    if (data.length !== sectorSize) bad('short sector');
    return data;
  };
  // FAT sector numbers: 109 in the header, the rest in the DIFAT chain
  const fatSectors: number[] = [];
  for (let i = 0; i < 109; i++) {
    const s = buf.readUInt32LE(0x4c + i * 4);
    if (s !== FREE && s !== END_OF_CHAIN) fatSectors.push(s);
  }
  const perSector = sectorSize / 4;
  const difatChain: number[] = [];
  for (let d = firstDifat, guard = 0; d !== END_OF_CHAIN && d !== FREE && guard <= sectorCount; guard++) {
    difatChain.push(d);
    const sec = sector(d);
    for (let i = 0; i < perSector - 1; i++) {
      const s = sec.readUInt32LE(i * 4);
      if (s !== FREE && s !== END_OF_CHAIN) fatSectors.push(s);
    }
    d = sec.readUInt32LE((perSector - 1) * 4);
  }
  // one read per run of consecutive FAT sectors (a writer puts them together): an MSI of 512-byte
  // sectors has a FAT sector per 64 KiB
  const fat = new Uint32Array(fatSectors.length * perSector);
  for (let k = 0; k < fatSectors.length; ) {
    let count = 1;
    while (k + count < fatSectors.length && fatSectors[k + count] === fatSectors[k]! + count) count++;
    const off = (fatSectors[k]! + 1) * sectorSize;
    if (off + count * sectorSize > src.size) bad('sector out of range');
    const data = src.read(off, count * sectorSize);
    if (data.length !== count * sectorSize) bad('short sector');
    for (let i = 0; i < count * perSector; i++) fat[k * perSector + i] = data.readUInt32LE(i * 4);
    k += count;
  }
  const sectorOffset = (n: number) => (n + 1) * sectorSize;
  const chain = (start: number, table: Uint32Array): number[] => {
    const out: number[] = [];
    for (let s = start; s !== END_OF_CHAIN && s !== FREE; s = table[s]!) {
      if (s >= table.length || out.length > table.length) bad('broken sector chain');
      out.push(s);
    }
    return out;
  };
  /** The sectors of a chain as runs of consecutive sectors: [first, count]. */
  const runs = (sectors: number[]): [number, number][] => {
    const out: [number, number][] = [];
    for (const n of sectors) {
      const last = out[out.length - 1];
      if (last && last[0] + last[1] === n) last[1]++;
      else out.push([n, 1]);
    }
    return out;
  };
  /** A chain's bytes, one read per run of consecutive sectors (at most `into`'s size each). */
  const chainPieces = function* (start: number, size: number, into?: Buffer): IterableIterator<Buffer> {
    let left = size;
    const max = into?.length ?? Number.POSITIVE_INFINITY;
    const sectors = chain(start, fat);
    // every sector of the chain must exist, read or not (as when each one was read)
    for (const n of sectors) if (sectorOffset(n) + sectorSize > src.size) bad('sector out of range');
    for (const [first, count] of runs(sectors)) {
      for (let at = 0; at < count && left > 0; ) {
        const n = Math.min(count - at, Math.max(1, Math.floor(max / sectorSize)));
        const off = sectorOffset(first + at);
        const len = Math.min(n * sectorSize, left);
        const data = src.read(off, len, into);
        if (data.length !== len) bad('short sector');
        yield data;
        left -= len;
        at += n;
      }
    }
    if (left > 0) bad('stream longer than its chain');
  };
  const readChain = (start: number, size?: number) => {
    const parts = [...chainPieces(start, size ?? chain(start, fat).length * sectorSize)];
    return parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  };
  const fatEntryOffset = (n: number) =>
    sectorOffset(fatSectors[Math.floor(n / perSector)]!) + (n % perSector) * 4;

  const dirChain = chain(firstDir, fat);
  const dir = Buffer.concat(dirChain.map(sector));
  interface Entry {
    index: number;
    name: string;
    type: number;
    left: number;
    right: number;
    child: number;
    start: number;
    size: number;
  }
  const entries: Entry[] = [];
  for (let off = 0; off + 128 <= dir.length; off += 128) {
    const nameLen = Math.min(64, dir.readUInt16LE(off + 0x40));
    entries.push({
      index: off / 128,
      name: dir.toString('utf16le', off, off + Math.max(0, nameLen - 2)),
      type: dir.readUInt8(off + 0x42),
      left: dir.readUInt32LE(off + 0x44),
      right: dir.readUInt32LE(off + 0x48),
      child: dir.readUInt32LE(off + 0x4c),
      start: dir.readUInt32LE(off + 0x74),
      size: dir.readUInt32LE(off + 0x78) + dir.readUInt32LE(off + 0x7c) * 2 ** 32,
    });
  }
  const root = entries[0];
  if (root?.type !== 5) bad('no root entry');
  const linked = new Set<number>([0]);
  /** The entries of one storage: its child's tree, walked through the sibling links. */
  const members = (first: number): Entry[] => {
    const out: Entry[] = [];
    const names = new Set<string>();
    const todo = first === NO_STREAM ? [] : [first];
    while (todo.length) {
      const i = todo.pop() as number;
      const e = entries[i];
      if (!e || e.type === 0 || e.type === 5) bad(`directory link to entry ${i} is out of range or free`);
      if (linked.has(i)) bad(`directory entry ${i} is linked twice`);
      linked.add(i);
      const key = e.name.toUpperCase();
      if (names.has(key)) bad(`two directory entries named ${JSON.stringify(e.name)} in one storage`);
      names.add(key);
      out.push(e);
      for (const next of [e.left, e.right]) if (next !== NO_STREAM) todo.push(next);
    }
    return out;
  };
  const top = members(root.child);
  for (let todo = top.filter((e) => e.type === 1); todo.length; ) {
    const storage = todo.pop() as Entry;
    todo.push(...members(storage.child).filter((e) => e.type === 1));
  }
  const orphans = entries
    .filter((e, i) => (e.type === 1 || e.type === 2) && !linked.has(i))
    .map((e) => e.name);
  const miniStream = readChain(root.start);
  const miniFatBytes = firstMiniFat === END_OF_CHAIN ? Buffer.alloc(0) : readChain(firstMiniFat);
  const miniFat = new Uint32Array(miniFatBytes.length / 4);
  for (let i = 0; i < miniFat.length; i++) miniFat[i] = miniFatBytes.readUInt32LE(i * 4);

  const rootChain = chain(root.start, fat);
  const miniFatChain = firstMiniFat === END_OF_CHAIN ? [] : chain(firstMiniFat, fat);
  const layoutOf = (e: Entry): StreamLayout => {
    const dirAt = e.index * 128;
    const entryOffset = sectorOffset(dirChain[Math.floor(dirAt / sectorSize)]!) + (dirAt % sectorSize);
    if (e.size < miniCutoff) {
      const units = chain(e.start, miniFat);
      const perSectorMini = sectorSize / miniSize;
      return {
        entryOffset,
        size: e.size,
        mini: true,
        unit: miniSize,
        units: units.map((m) => {
          const s = rootChain[Math.floor(m / perSectorMini)];
          if (s === undefined) bad('mini sector out of range');
          return sectorOffset(s) + (m % perSectorMini) * miniSize;
        }),
        chainEntries: units.map(
          (m) => sectorOffset(miniFatChain[Math.floor(m / perSector)]!) + (m % perSector) * 4,
        ),
      };
    }
    const units = chain(e.start, fat);
    return {
      entryOffset,
      size: e.size,
      mini: false,
      unit: sectorSize,
      units: units.map(sectorOffset),
      chainEntries: units.map(fatEntryOffset),
    };
  };

  // streams are read when asked for (an MSI's cabinet is most of the file and never needed here)
  const streams = new Map<string, () => Buffer>();
  const pieces = new Map<string, (into?: Buffer) => IterableIterator<Buffer>>();
  const layouts = new Map<string, () => StreamLayout>();
  const miniData = (e: Entry) =>
    Buffer.concat(
      chain(e.start, miniFat).map((s) => miniStream.subarray(s * miniSize, (s + 1) * miniSize)),
    ).subarray(0, e.size);
  for (const e of top) {
    if (e.type !== 2) continue;
    layouts.set(e.name, () => layoutOf(e));
    streams.set(e.name, () => (e.size < miniCutoff ? miniData(e) : readChain(e.start, e.size)));
    pieces.set(e.name, function* (into) {
      if (e.size < miniCutoff) yield miniData(e);
      else yield* chainPieces(e.start, e.size, into ?? Buffer.allocUnsafe(PIECE));
    });
  }
  const structure: CompoundStructure = {
    header: buf,
    sectorSize,
    fatSectors,
    difatChain,
    fat,
    dirChain,
    dir,
    miniFat,
    miniFatChain,
    rootChain,
    top: top.map((e) => ({ index: e.index, name: e.name, type: e.type })),
  };
  return { streams, pieces, orphans, layouts, miniCutoff, structure };
}
