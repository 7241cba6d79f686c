/**
 * Reads the version of a Windows executable from its VERSIONINFO resource (VS_FIXEDFILEINFO):
 * the product version as x.y.z (the fourth field is dropped: MSI compares three).
 */
import { readFileSync } from 'node:fs';

const KEY = Buffer.from('VS_VERSION_INFO\0', 'utf16le');
const SIGNATURE = 0xfeef04bd;

export interface PeVersion {
  file: [number, number, number, number];
  product: [number, number, number, number];
}

export function readPeVersion(bytes: Buffer): PeVersion | undefined {
  for (let at = bytes.indexOf(KEY); at !== -1; at = bytes.indexOf(KEY, at + 2)) {
    let off = at + KEY.length;
    off = (off + 3) & ~3; // DWORD alignment of the Value member
    if (off + 52 > bytes.length || bytes.readUInt32LE(off) !== SIGNATURE) continue;
    const word = (o: number): [number, number] => [
      bytes.readUInt32LE(o) >>> 16,
      bytes.readUInt32LE(o) & 0xffff,
    ];
    const [fa, fb] = word(off + 8);
    const [fc, fd] = word(off + 12);
    const [pa, pb] = word(off + 16);
    const [pc, pd] = word(off + 20);
    return { file: [fa, fb, fc, fd], product: [pa, pb, pc, pd] };
  }
  return undefined;
}

/** x.y.z from the product version of the file, or undefined when it has no version resource. */
export function agentVersion(path: string): string | undefined {
  const v = readPeVersion(readFileSync(path));
  if (!v) return undefined;
  const [a, b, c] = v.product[0] || v.product[1] || v.product[2] ? v.product : v.file;
  return `${a}.${b}.${c}`;
}

/** MSI ProductVersion limits: major ≤ 255, minor ≤ 255, build ≤ 65535. */
export function isMsiVersion(v: string): boolean {
  const m = /^(\d+)\.(\d+)\.(\d+)$/.exec(v);
  return Boolean(m && Number(m[1]) <= 255 && Number(m[2]) <= 255 && Number(m[3]) <= 65535);
}
