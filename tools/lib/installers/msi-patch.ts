/**
 * In-place edits of a Compound File whose layout was read once (cfb.ts StreamLayout): bytes at a
 * stream offset, and a stream rewritten with new contents no longer than its chain (the surplus
 * sectors freed, the size in its directory entry updated; never across the mini-stream cutoff).
 * And the MSI SummaryInformation property set with some string properties replaced.
 */
import { closeSync, fstatSync, openSync, readSync, writeSync } from 'node:fs';
import { fileSource, readCompoundDirectory, type StreamLayout } from '../cfb.ts';
import { SignetError } from '../errors.ts';

const END_OF_CHAIN = 0xfffffffe;
const FREE = 0xffffffff;

function bad(what: string): never {
  throw new SignetError('E_INSTALLER_BUILD_FAILED', `incremental MSI: ${what}`);
}

function put(fd: number, data: Buffer, at: number): void {
  if (writeSync(fd, data, 0, data.length, at) !== data.length) bad('short write');
}

/** Writes `data` at `offset` of the stream (within its current size). */
export function patchStream(fd: number, s: StreamLayout, offset: number, data: Buffer): void {
  if (offset < 0 || offset + data.length > s.size) bad('patch outside the stream');
  let done = 0;
  while (done < data.length) {
    const pos = offset + done;
    const unit = Math.floor(pos / s.unit);
    const within = pos % s.unit;
    const n = Math.min(s.unit - within, data.length - done);
    put(fd, data.subarray(done, done + n), s.units[unit]! + within);
    done += n;
  }
}

/** Whether `size` bytes fit the stream's chain without changing its size class. */
export function fitsStream(s: StreamLayout, size: number, miniCutoff: number): boolean {
  return size > 0 && size <= s.units.length * s.unit && size < miniCutoff === s.mini;
}

/** Replaces the stream's contents by `data` in its own chain; the sectors it no longer needs are freed. */
export function rewriteStream(fd: number, s: StreamLayout, data: Buffer, miniCutoff: number): void {
  if (!fitsStream(s, data.length, miniCutoff)) bad('new contents do not fit the stream');
  const used = Math.ceil(data.length / s.unit);
  // runs of adjacent units become one write
  for (let i = 0; i < used; ) {
    let j = i + 1;
    while (j < used && s.units[j] === s.units[j - 1]! + s.unit) j++;
    const chunk = Buffer.alloc((j - i) * s.unit);
    data.copy(chunk, 0, i * s.unit, Math.min(data.length, j * s.unit));
    put(fd, chunk, s.units[i]!);
    i = j;
  }
  const word = (v: number) => {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    return b;
  };
  if (used < s.units.length) {
    put(fd, word(END_OF_CHAIN), s.chainEntries[used - 1]!);
    for (let i = used; i < s.units.length; i++) put(fd, word(FREE), s.chainEntries[i]!);
  }
  const size = Buffer.alloc(8);
  size.writeUInt32LE(data.length, 0);
  put(fd, size, s.entryOffset + 0x78);
}

const VT_LPSTR = 30;

/** The string properties of a property set's first section (PID → value), as stored (codepage bytes). */
export function summaryStrings(stream: Buffer): Map<number, Buffer> {
  const out = new Map<number, Buffer>();
  for (const p of summaryProperties(stream))
    if (p.raw.readUInt32LE(0) === VT_LPSTR) {
      const len = p.raw.readUInt32LE(4);
      let v = p.raw.subarray(8, 8 + len);
      while (v.length && v[v.length - 1] === 0) v = v.subarray(0, v.length - 1);
      out.set(p.pid, v);
    }
  return out;
}

function summaryProperties(s: Buffer): { pid: number; raw: Buffer }[] {
  if (s.length < 48 || s.readUInt16LE(0) !== 0xfffe || s.readUInt32LE(24) !== 1)
    bad('unexpected summary stream');
  const section = s.readUInt32LE(44);
  const size = s.readUInt32LE(section);
  const count = s.readUInt32LE(section + 4);
  if (section + size > s.length || 8 + count * 8 > size) bad('summary section out of range');
  const entries = Array.from({ length: count }, (_, i) => ({
    pid: s.readUInt32LE(section + 8 + i * 8),
    at: s.readUInt32LE(section + 12 + i * 8),
  }));
  const byOffset = [...entries].sort((a, b) => a.at - b.at);
  return entries.map((e) => {
    const next = byOffset.find((x) => x.at > e.at)?.at ?? size;
    if (e.at < 8 + count * 8 || next > size) bad('summary property out of range');
    return { pid: e.pid, raw: s.subarray(section + e.at, section + next) };
  });
}

/** The property set with the string properties in `replace` set to new values (other bytes kept). */
export function rewriteSummary(stream: Buffer, replace: Map<number, Buffer>): Buffer {
  const props = summaryProperties(stream).map(({ pid, raw }) => {
    const value = replace.get(pid);
    if (!value) return { pid, raw };
    if (raw.readUInt32LE(0) !== VT_LPSTR) bad(`summary property ${pid} is not a string`);
    const padded = Buffer.alloc(8 + Math.ceil((value.length + 1) / 4) * 4);
    padded.writeUInt32LE(VT_LPSTR, 0);
    padded.writeUInt32LE(value.length + 1, 4);
    value.copy(padded, 8);
    return { pid, raw: padded };
  });
  const section = stream.readUInt32LE(44);
  const head = 8 + props.length * 8;
  const size = head + props.reduce((n, p) => n + p.raw.length, 0);
  const out = Buffer.alloc(section + size);
  stream.copy(out, 0, 0, section);
  out.writeUInt32LE(size, section);
  out.writeUInt32LE(props.length, section + 4);
  let at = head;
  props.forEach((p, i) => {
    out.writeUInt32LE(p.pid, section + 8 + i * 8);
    out.writeUInt32LE(at, section + 12 + i * 8);
    p.raw.copy(out, section + at);
    at += p.raw.length;
  });
  return out;
}

const FAT_SECTOR = 0xfffffffd;
const HEADER_DIFAT = 109;
/** Sectors a site's own steps may add at the end (its signature, the mini stream's growth): 32 KiB at 512 bytes. */
const SITE_RESERVE = 64;

/**
 * Lays a Compound File out so that `shared` (raw names of streams every site's copy holds as
 * they are) come first: each other regular (non-mini) stream with a sector before the end of
 * the shared ones moves to new sectors at the end of the file; the sectors it leaves are zeroed
 * and freed. The FAT gets room for what a site adds when it is signed in place (sign/msi-image.ts
 * appends), so that the header stays as it is. Returns the length of the file's prefix that holds
 * only the header, the shared streams and free sectors: a site changes nothing there, so the
 * SHA-256 of a site's file continues from the base's state after it (exec/runner.ts, sha256File's
 * `prefix`; compared there, never assumed). The FAT grows while the header's list or the DIFAT
 * sectors there are have a free place; streams move only when the FAT then has room for them
 * (the site's reserve may be short, when it could not grow far enough: a site that needs more
 * changes the header, and its hash is then computed in full). The directory, mini stream, mini
 * FAT and DIFAT stay where they are: one of them before the cabinet makes the prefix shorter.
 */
export function placeSharedFirst(path: string, shared: readonly string[]): number {
  const fd = openSync(path, 'r+');
  try {
    const size = fstatSync(fd).size;
    const d = readCompoundDirectory(fileSource(fd));
    const s = d.structure;
    const ss = s.sectorSize;
    const per = ss / 4;
    const keep = new Set(shared);
    const sectorOf = (offset: number) => offset / ss - 1;
    const layouts = [...d.layouts].map(([name, l]) => ({ name, l: l() })).filter((x) => !x.l.mini);
    // a loop, not Math.max(...): a 60 MB cabinet has 120,000 sectors, more arguments than a call takes
    let sharedEnd = -1;
    for (const x of layouts)
      if (keep.has(x.name)) for (const u of x.l.units) sharedEnd = Math.max(sharedEnd, sectorOf(u));
    const moving = layouts.filter((x) => !keep.has(x.name) && x.l.units.some((u) => sectorOf(u) < sharedEnd));
    const needed = moving.reduce((n, x) => n + x.l.units.length, 0);
    let next = size / ss - 1;
    if (Number.isInteger(next)) {
      const fat = Array.from(s.fat);
      const fatSectors = [...s.fatSectors];
      const header = Buffer.from(s.header);
      const difat = new Map<number, Buffer>();
      // room in the FAT for the moved sectors and a site's own: new FAT sectors at the end, listed
      // in the header, then in the DIFAT sectors there are (none is added)
      while (fatSectors.length * per < next + needed + SITE_RESERVE) {
        const k = fatSectors.length - HEADER_DIFAT;
        const n = next;
        if (k < 0) {
          // the header's list is filled from its start: a slot that is not free ends the growth
          if (header.readUInt32LE(0x4c + fatSectors.length * 4) !== FREE) break;
          header.writeUInt32LE(n, 0x4c + fatSectors.length * 4);
        } else {
          const at = s.difatChain[Math.floor(k / (per - 1))];
          if (at === undefined) break;
          let b = difat.get(at);
          if (!b) {
            b = Buffer.alloc(ss);
            readSync(fd, b, 0, ss, (at + 1) * ss);
            difat.set(at, b);
          }
          b.writeUInt32LE(n, (k % (per - 1)) * 4);
        }
        next++;
        fatSectors.push(n);
        while (fat.length < fatSectors.length * per) fat.push(FREE);
        fat[n] = FAT_SECTOR;
      }
      if (needed > 0 && fatSectors.length * per >= next + needed) {
        const zero = Buffer.alloc(ss);
        for (const { l } of moving) {
          const from = l.units.map(sectorOf);
          const to = from.map(() => next++);
          const data = Buffer.alloc(from.length * ss);
          from.forEach((n, i) => {
            readSync(fd, data, i * ss, ss, (n + 1) * ss);
          });
          put(fd, data, (to[0]! + 1) * ss);
          for (const n of from) {
            put(fd, zero, (n + 1) * ss);
            fat[n] = FREE;
          }
          to.forEach((n, i) => {
            fat[n] = i === to.length - 1 ? END_OF_CHAIN : to[i + 1]!;
          });
          const start = Buffer.alloc(4);
          start.writeUInt32LE(to[0]!);
          put(fd, start, l.entryOffset + 0x74);
        }
      }
      fatSectors.forEach((n, k) => {
        let changed = k >= s.fatSectors.length;
        for (let i = 0; i < per && !changed; i++) changed = fat[k * per + i] !== s.fat[k * per + i];
        if (!changed) return;
        const b = Buffer.alloc(ss);
        for (let i = 0; i < per; i++) b.writeUInt32LE(fat[k * per + i] ?? FREE, i * 4);
        put(fd, b, (n + 1) * ss);
      });
      for (const [n, b] of difat) put(fd, b, (n + 1) * ss);
      header.writeUInt32LE(fatSectors.length, 0x2c);
      put(fd, header, 0);
    }
    // the prefix: the header, then sectors that are shared or free, as the file now is
    const now = readCompoundDirectory(fileSource(fd));
    const owned = new Set(
      [...now.layouts].filter(([name]) => keep.has(name)).flatMap(([, l]) => l().units.map(sectorOf)),
    );
    const sectors = fstatSync(fd).size / ss - 1;
    let n = 0;
    while (n < sectors && (owned.has(n) || now.structure.fat[n] === FREE)) n++;
    return (n + 1) * ss;
  } finally {
    closeSync(fd);
  }
}
