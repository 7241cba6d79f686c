/**
 * A one-file, uncompressed Microsoft Cabinet (MS-CAB), written in-process: the site cabinet of an
 * incremental MSI (site.json alone, on its own Media row). Its data blocks carry their CFDATA
 * checksums; a cabinet smaller than `minSize` is padded with a header reserve (cbCFHeader, the
 * area signed cabinets use), so that it stays one size class in the Compound File. And the
 * reader for the check: the one file of such a cabinet, its checksums verified.
 */
import { SignetError } from '../errors.ts';

const BLOCK = 32_768; // the largest uncompressed CFDATA block
const HEADER = 36;
const RESERVE_FIELDS = 4; // cbCFHeader (2), cbCFFolder (1), cbCFData (1)
const FOLDER = 8;
const DATA_HEADER = 8;
const FLAG_RESERVE = 0x0004;
const MAX_RESERVE = 60_000;

/** The CFDATA checksum (the cabinet SDK's CSUMCompute). */
export function cabChecksum(data: Buffer, seed = 0): number {
  let csum = seed >>> 0;
  const whole = data.length - (data.length % 4);
  for (let i = 0; i < whole; i += 4) csum = (csum ^ data.readUInt32LE(i)) >>> 0;
  let ul = 0;
  const rest = data.length % 4;
  let i = whole;
  if (rest === 3) ul |= data[i++]! << 16;
  if (rest >= 2) ul |= data[i++]! << 8;
  if (rest >= 1) ul |= data[i++]!;
  return (csum ^ ul) >>> 0;
}

function dataBlock(chunk: Buffer): Buffer {
  const b = Buffer.alloc(DATA_HEADER + chunk.length);
  b.writeUInt16LE(chunk.length, 4);
  b.writeUInt16LE(chunk.length, 6);
  chunk.copy(b, DATA_HEADER);
  b.writeUInt32LE(cabChecksum(b.subarray(4, 8), cabChecksum(chunk)), 0);
  return b;
}

/** Size of the cabinet `writeCabinet` makes for a file of `size` bytes (before padding). */
export function cabinetSize(name: string, size: number): number {
  const blocks = Math.max(1, Math.ceil(size / BLOCK));
  return HEADER + FOLDER + 16 + Buffer.byteLength(name, 'latin1') + 1 + blocks * DATA_HEADER + size;
}

export interface CabinetFile {
  /** Name in the cabinet: for an MSI, the File table key. */
  name: string;
  data: Buffer;
  /** DOS date and time (0 = 1980-01-01 00:00). */
  date?: number;
  time?: number;
}

/** One folder, no compression, one file; padded to `minSize` bytes with a header reserve. */
export function writeCabinet(file: CabinetFile, minSize = 0): Buffer {
  if (!/^[\x21-\x7e]{1,255}$/.test(file.name)) throw new Error(`cabinet: unsafe file name ${file.name}`);
  const natural = cabinetSize(file.name, file.data.length);
  let reserve = 0;
  if (natural < minSize) reserve = Math.max(0, minSize - natural - RESERVE_FIELDS);
  if (reserve > MAX_RESERVE) throw new Error('cabinet: padding beyond the header reserve limit');
  const withReserve = reserve > 0 || natural < minSize;
  const headerSize = HEADER + (withReserve ? RESERVE_FIELDS + reserve : 0);
  const chunks: Buffer[] = [];
  for (let o = 0; o < file.data.length || chunks.length === 0; o += BLOCK)
    chunks.push(file.data.subarray(o, Math.min(o + BLOCK, file.data.length)));
  const blocks = chunks.map(dataBlock);
  const name = Buffer.from(`${file.name}\0`, 'latin1');
  const coffFiles = headerSize + FOLDER;
  const coffCabStart = coffFiles + 16 + name.length;
  const total = coffCabStart + blocks.reduce((n, b) => n + b.length, 0);
  const h = Buffer.alloc(headerSize);
  h.write('MSCF', 0, 'latin1');
  h.writeUInt32LE(total, 8);
  h.writeUInt32LE(coffFiles, 16);
  h.writeUInt8(3, 24); // versionMinor
  h.writeUInt8(1, 25); // versionMajor
  h.writeUInt16LE(1, 26); // cFolders
  h.writeUInt16LE(1, 28); // cFiles
  h.writeUInt16LE(withReserve ? FLAG_RESERVE : 0, 30);
  if (withReserve) h.writeUInt16LE(reserve, HEADER); // cbCFFolder = cbCFData = 0
  const folder = Buffer.alloc(FOLDER);
  folder.writeUInt32LE(coffCabStart, 0);
  folder.writeUInt16LE(blocks.length, 4);
  folder.writeUInt16LE(0, 6); // typeCompress: none
  const entry = Buffer.alloc(16);
  entry.writeUInt32LE(file.data.length, 0);
  entry.writeUInt32LE(0, 4); // uoffFolderStart
  entry.writeUInt16LE(0, 8); // iFolder
  entry.writeUInt16LE(file.date ?? 0x21, 10);
  entry.writeUInt16LE(file.time ?? 0, 12);
  entry.writeUInt16LE(0x20, 14); // archive
  return Buffer.concat([h, folder, entry, name, ...blocks]);
}

function bad(what: string): never {
  throw new SignetError('E_INSTALLER_CHECK_FAILED', `site cabinet: ${what}`);
}

/** The one file of an uncompressed one-folder cabinet, every CFDATA checksum verified. */
export function readCabinetFile(cab: Buffer): CabinetFile {
  if (cab.length < HEADER || cab.toString('latin1', 0, 4) !== 'MSCF') bad('not a cabinet');
  if (cab.readUInt32LE(8) !== cab.length) bad('cbCabinet is not the stream size');
  if (cab.readUInt16LE(26) !== 1 || cab.readUInt16LE(28) !== 1) bad('not one folder with one file');
  const flags = cab.readUInt16LE(30);
  if (flags & ~FLAG_RESERVE) bad('unexpected header flags');
  let at = HEADER;
  let dataReserve = 0;
  let folderReserve = 0;
  if (flags & FLAG_RESERVE) {
    at += RESERVE_FIELDS + cab.readUInt16LE(HEADER);
    folderReserve = cab.readUInt8(HEADER + 2);
    dataReserve = cab.readUInt8(HEADER + 3);
  }
  const start = cab.readUInt32LE(at);
  const count = cab.readUInt16LE(at + 4);
  if (cab.readUInt16LE(at + 6) !== 0) bad('compressed');
  at += FOLDER + folderReserve;
  if (cab.readUInt32LE(16) !== at) bad('unexpected file table offset');
  const size = cab.readUInt32LE(at);
  if (cab.readUInt32LE(at + 4) !== 0 || cab.readUInt16LE(at + 8) !== 0) bad('unexpected file entry');
  const nameEnd = cab.indexOf(0, at + 16);
  if (nameEnd < 0) bad('unterminated name');
  const name = cab.toString('latin1', at + 16, nameEnd);
  const parts: Buffer[] = [];
  let p = start;
  for (let i = 0; i < count; i++) {
    if (p + DATA_HEADER + dataReserve > cab.length) bad('truncated data block');
    const csum = cab.readUInt32LE(p);
    const cb = cab.readUInt16LE(p + 4);
    if (cab.readUInt16LE(p + 6) !== cb) bad('stored block sizes differ');
    const chunk = cab.subarray(p + DATA_HEADER + dataReserve, p + DATA_HEADER + dataReserve + cb);
    if (chunk.length !== cb) bad('truncated data block');
    const want = cabChecksum(cab.subarray(p + 4, p + DATA_HEADER + dataReserve), cabChecksum(chunk));
    if (csum !== 0 && csum !== want) bad(`checksum mismatch in block ${i}`);
    parts.push(chunk);
    p += DATA_HEADER + dataReserve + cb;
  }
  if (p !== cab.length) bad('bytes after the last data block');
  const data = Buffer.concat(parts);
  if (data.length !== size) bad('file size differs from its data');
  return { name, data };
}
