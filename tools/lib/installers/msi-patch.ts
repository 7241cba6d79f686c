/**
 * In-place edits of a Compound File whose layout was read once (cfb.ts StreamLayout): bytes at a
 * stream offset, and a stream rewritten with new contents no longer than its chain (the surplus
 * sectors freed, the size in its directory entry updated; never across the mini-stream cutoff).
 * And the MSI SummaryInformation property set with some string properties replaced.
 */
import { writeSync } from 'node:fs';
import type { StreamLayout } from '../cfb.ts';
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
