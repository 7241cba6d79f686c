/**
 * Crafting hostile Compound Files for the signature tests: plant an extra directory entry (named
 * like the signature stream) that holds another blob, either as an orphan (reachable from no
 * storage: invisible to osslsigncode) or hung into the root's tree as a duplicate. The data goes
 * into new sectors appended at the end of the file, chained through free FAT entries; the visible
 * streams (and so the signed digest) are untouched.
 */
import { readFileSync, writeFileSync } from 'node:fs';

const END_OF_CHAIN = 0xfffffffe;
const FREE = 0xffffffff;
const NO_STREAM = 0xffffffff;

export interface PlantOptions {
  /** Entry name (default "\u0005DigitalSignature"). */
  name?: string;
  /** 'orphan' (no storage links it) or 'duplicate' (linked as a sibling in the root's tree). */
  mode?: 'orphan' | 'duplicate';
}

/** Adds a directory entry holding `blob` to the compound file at `path` (in place). */
export function plantStreamEntry(path: string, blob: Buffer, options: PlantOptions = {}): void {
  const name = options.name ?? '\u0005DigitalSignature';
  let file = readFileSync(path);
  const sectorSize = 1 << file.readUInt16LE(0x1e);
  const miniCutoff = file.readUInt32LE(0x38);
  const perSector = sectorSize / 4;
  const fatSectors: number[] = [];
  for (let i = 0; i < 109; i++) {
    const s = file.readUInt32LE(0x4c + i * 4);
    if (s !== FREE && s !== END_OF_CHAIN) fatSectors.push(s);
  }
  const off = (s: number) => (s + 1) * sectorSize;
  const fatGet = (i: number) =>
    file.readUInt32LE(off(fatSectors[Math.floor(i / perSector)] as number) + (i % perSector) * 4);
  const fatSet = (i: number, v: number) =>
    file.writeUInt32LE(v, off(fatSectors[Math.floor(i / perSector)] as number) + (i % perSector) * 4);
  // the data: padded to the mini-stream cutoff so that it lives in regular sectors
  const data = Buffer.alloc(Math.max(blob.length, miniCutoff));
  blob.copy(data);
  const count = Math.ceil(data.length / sectorSize);
  const first = Math.ceil(file.length / sectorSize) - 1;
  if (first + count > fatSectors.length * perSector) throw new Error('cfb-craft: no room in the FAT');
  const padded = Buffer.alloc(off(first + count));
  file.copy(padded);
  file = padded;
  for (let k = 0; k < count; k++) {
    if (fatGet(first + k) !== FREE) throw new Error('cfb-craft: FAT entry in use');
    fatSet(first + k, k === count - 1 ? END_OF_CHAIN : first + k + 1);
    data.copy(file, off(first + k), k * sectorSize, (k + 1) * sectorSize);
  }
  // a free directory slot in the directory chain
  let slot = -1;
  let rootOff = -1;
  const entries: number[] = [];
  for (let s = file.readUInt32LE(0x30); s !== END_OF_CHAIN; s = fatGet(s)) {
    for (let e = 0; e < sectorSize / 128; e++) entries.push(off(s) + e * 128);
  }
  for (const e of entries) {
    const type = file.readUInt8(e + 0x42);
    if (type === 5) rootOff = e;
    if (type === 0 && slot < 0) slot = e;
  }
  if (slot < 0 || rootOff < 0) throw new Error('cfb-craft: no free directory entry');
  file.fill(0, slot, slot + 128);
  const nameBytes = Buffer.from(`${name}\0`, 'utf16le');
  nameBytes.copy(file, slot);
  file.writeUInt16LE(nameBytes.length, slot + 0x40);
  file.writeUInt8(2, slot + 0x42); // stream
  file.writeUInt8(1, slot + 0x43); // black
  file.writeUInt32LE(NO_STREAM, slot + 0x44);
  file.writeUInt32LE(NO_STREAM, slot + 0x48);
  file.writeUInt32LE(NO_STREAM, slot + 0x4c);
  file.writeUInt32LE(first, slot + 0x74);
  file.writeUInt32LE(data.length, slot + 0x78);
  file.writeUInt32LE(0, slot + 0x7c);
  if (options.mode === 'duplicate') {
    // hang it below the first tree node that has a free sibling link
    const index = (e: number) => entries.indexOf(e);
    const slotIndex = index(slot);
    let node = file.readUInt32LE(rootOff + 0x4c);
    for (;;) {
      const at = entries[node] as number;
      const left = file.readUInt32LE(at + 0x44);
      if (left === NO_STREAM) {
        file.writeUInt32LE(slotIndex, at + 0x44);
        break;
      }
      node = left;
    }
  }
  writeFileSync(path, file);
}
