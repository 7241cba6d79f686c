/**
 * What a file *is*, by its bytes, not its name: a PE image (MZ header whose e_lfanew points at
 * "PE\0\0"; a DLL when its COFF characteristics say so) or a Compound File (the container of MSI,
 * MSP, MST…). The publish gate verifies every such file whatever it is called (`.sys`, `.scr`,
 * `.cab`, no extension…); anything else is "not a signable type".
 */
import { closeSync, openSync, readSync } from 'node:fs';
import type { ArtifactKind } from '../artifact.ts';

const CFB_MAGIC = Buffer.from('d0cf11e0a1b11ae1', 'hex');
const IMAGE_FILE_DLL = 0x2000;

function readAt(fd: number, position: number, length: number): Buffer {
  const buf = Buffer.alloc(length);
  return buf.subarray(0, readSync(fd, buf, 0, length, position));
}

/** Pure over the header bytes of a file (the first 64 bytes, and 24 at e_lfanew for a PE). */
export function signableKind(path: string): ArtifactKind {
  const fd = openSync(path, 'r');
  try {
    const head = readAt(fd, 0, 64);
    if (head.length >= 8 && head.subarray(0, 8).equals(CFB_MAGIC)) return 'msi';
    if (head.length < 64 || head.readUInt16LE(0) !== 0x5a4d) return 'other';
    const pe = readAt(fd, head.readUInt32LE(0x3c), 24);
    if (pe.length < 24 || pe.readUInt32LE(0) !== 0x00004550) return 'other';
    return pe.readUInt16LE(22) & IMAGE_FILE_DLL ? 'dll' : 'exe';
  } finally {
    closeSync(fd);
  }
}
