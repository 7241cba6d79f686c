/**
 * The Compound File reader's two ways to read a stream — whole (`streams`) and in pieces through
 * one reused buffer (`pieces`) — over a real wixl MSI, and over the same MSI with its cabinet's
 * sectors reordered (a chain in three runs), which `msiextract` must still read the same.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildMsi, buildPe } from '../../test/helpers/pe.ts';
import { tempDir } from '../../test/helpers/tmp.ts';
import { readCompoundDirectory, sameBytes } from './cfb.ts';
import { defaultRunner } from './exec/runner.ts';

let dir: string;
let msi: Buffer;

beforeAll(async () => {
  dir = tempDir('signet-cfb-');
  const pe = await buildPe(join(dir, 'a.exe'), { padBytes: 3 << 20 });
  msi = readFileSync(await buildMsi(join(dir, 'a.msi'), pe, join(dir, 'mw')));
}, 60_000);

/** A stream's pieces read through one small buffer (so a run is cut too), copied and joined. */
const joined = (pieces: (into?: Buffer) => Iterable<Buffer>): Buffer =>
  Buffer.concat([...pieces(Buffer.allocUnsafe(3 * 4096))].map((b) => Buffer.from(b)));

/** The largest stream's raw name and layout. */
function largest(bytes: Buffer) {
  const d = readCompoundDirectory(bytes);
  const [name] = [...d.streams.keys()]
    .map((n) => [n, d.layouts.get(n)!().size] as const)
    .sort((a, b) => b[1] - a[1])[0]!;
  return { d, name, layout: d.layouts.get(name)!() };
}

/** Swaps the contents of the largest stream's sectors 1 and 2 and relinks the FAT to match. */
function reorder(bytes: Buffer): Buffer {
  const out = Buffer.from(bytes);
  const { layout } = largest(bytes);
  const { units, chainEntries, unit } = layout;
  expect(layout.mini).toBe(false);
  const sector = (offset: number) => offset / unit - 1;
  const [s1, s2] = [units[1]!, units[2]!];
  bytes.copy(out, s1, s2, s2 + unit);
  bytes.copy(out, s2, s1, s1 + unit);
  // logical order s0 → s2 → s1 → s3: FAT[s0] = s2, FAT[s2] = s1, FAT[s1] = s3
  out.writeUInt32LE(sector(s2), chainEntries[0]!);
  out.writeUInt32LE(sector(s1), chainEntries[2]!);
  out.writeUInt32LE(sector(units[3]!), chainEntries[1]!);
  return out;
}

describe('compound file streams', () => {
  it('every stream read in pieces is the stream read whole', () => {
    const d = readCompoundDirectory(msi);
    expect(d.pieces.size).toBe(d.streams.size);
    for (const [name, read] of d.streams) {
      const whole = read();
      expect(whole.length).toBe(d.layouts.get(name)!().size);
      expect(joined(d.pieces.get(name)!).equals(whole)).toBe(true);
    }
  });

  it('a chain out of order reads in order, whole and in pieces, as msiextract reads it', async () => {
    const moved = reorder(msi);
    expect(moved.equals(msi)).toBe(false);
    const before = largest(msi);
    const after = readCompoundDirectory(moved);
    const whole = after.streams.get(before.name)!();
    expect(whole.equals(before.d.streams.get(before.name)!())).toBe(true);
    expect(joined(after.pieces.get(before.name)!).equals(whole)).toBe(true);
    // the real reader agrees: the agent comes out of both files byte for byte
    const files: Buffer[] = [];
    for (const [name, bytes] of [
      ['in-order.msi', msi],
      ['reordered.msi', moved],
    ] as const) {
      writeFileSync(join(dir, name), bytes);
      const x = join(dir, `x-${name}`);
      await defaultRunner.run('msiextract', ['-C', x, join(dir, name)]);
      const listed = (await defaultRunner.run('find', [x, '-name', 'agent.exe'])).stdout.trim();
      files.push(readFileSync(listed));
    }
    expect(files[1]!.equals(files[0]!)).toBe(true);
  });

  it('sameBytes compares sequences however they are cut', () => {
    const d = readCompoundDirectory(msi);
    const { name } = largest(msi);
    const read = d.pieces.get(name)!;
    expect(sameBytes(read(Buffer.allocUnsafe(4096)), read(Buffer.allocUnsafe(7 * 4096)))).toBe(true);
    const whole = d.streams.get(name)!();
    const changed = Buffer.from(whole);
    changed[changed.length - 1]! ^= 1;
    expect(sameBytes(read(), [changed][Symbol.iterator]())).toBe(false);
    expect(sameBytes(read(), [whole.subarray(0, whole.length - 1)][Symbol.iterator]())).toBe(false);
    expect(
      sameBytes(read(), [whole.subarray(0, 5), Buffer.alloc(0), whole.subarray(5)][Symbol.iterator]()),
    ).toBe(true);
  });

  it('a chain that runs past the end of the file is a CompoundFileError, whole and in pieces', () => {
    const { name, layout } = largest(msi);
    const broken = Buffer.from(msi);
    // the last sector's FAT entry names the sector just past the end instead of END_OF_CHAIN
    broken.writeUInt32LE(msi.length / layout.unit - 1, layout.chainEntries[layout.units.length - 1]!);
    const d = readCompoundDirectory(broken);
    expect(() => d.streams.get(name)!()).toThrow(/out of range|broken sector chain/);
    expect(() => joined(d.pieces.get(name)!)).toThrow(/out of range|broken sector chain/);
  });
});
