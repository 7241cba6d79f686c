/**
 * Reads the tables and the summary information of an MSI database in-process: MSI stream-name
 * decoding, the string pool and the column-major table streams, over the Compound File reader of
 * ../cfb.ts.
 * The lint reads a dozen tables per build; spawning `msiinfo export` for each from Node costs
 * ~10 ms of the main thread apiece, this costs a few ms for all. Read-only, no dependencies,
 * cross-checked against `msiinfo export` in msi-db.test.ts.
 */
import { closeSync, openSync } from 'node:fs';
import {
  type ByteSource,
  type CompoundDirectory,
  CompoundFileError,
  fileSource,
  readCompoundDirectory,
} from '../cfb.ts';
import { SignetError } from '../errors.ts';
import type { MsiFacts, MsiTable } from './msi.ts';

function bad(what: string): never {
  throw new SignetError('E_INSTALLER_CHECK_FAILED', `MSI database: ${what}`);
}

function mime(x: number): string {
  if (x < 10) return String.fromCharCode(48 + x);
  if (x < 36) return String.fromCharCode(65 + x - 10);
  if (x < 62) return String.fromCharCode(97 + x - 36);
  return x === 62 ? '.' : '_';
}

/** MSI packs two name characters into one UTF-16 unit; tables carry the 0x4840 prefix. */
export function decodeStreamName(raw: string): string {
  let out = '';
  for (const c of raw) {
    const ch = c.charCodeAt(0);
    if (ch >= 0x3800 && ch < 0x4840) {
      if (ch >= 0x4800) out += mime(ch - 0x4800);
      else {
        const v = ch - 0x3800;
        out += mime(v & 0x3f) + mime((v >> 6) & 0x3f);
      }
    } else out += c;
  }
  return out;
}

function unmime(c: string): number {
  const x = c.charCodeAt(0);
  if (x >= 48 && x <= 57) return x - 48;
  if (x >= 65 && x <= 90) return x - 65 + 10;
  if (x >= 97 && x <= 122) return x - 97 + 36;
  return c === '.' ? 62 : c === '_' ? 63 : -1;
}

/**
 * The raw (Compound File) name of a stream's MSI name, as Windows Installer (and msibuild) write
 * it: pairs of [0-9A-Za-z._] in one unit, a last single one in 0x4800 + x, anything else as is.
 */
export function encodeStreamName(name: string): string {
  let out = '';
  for (let i = 0; i < name.length; i++) {
    const a = unmime(name[i]!);
    if (a < 0) {
      out += name[i];
      continue;
    }
    const b = i + 1 < name.length ? unmime(name[i + 1]!) : -1;
    if (b < 0) out += String.fromCharCode(0x4800 + a);
    else {
      out += String.fromCharCode(0x3800 + a + (b << 6));
      i++;
    }
  }
  return out;
}

const TABLE_PREFIX = '\u4840';
const MSITYPE_STRING = 0x0800;
const MSITYPE_TEMPORARY = 0x4000;

interface Column {
  name: string;
  number: number;
  type: number;
}

/** One string of the pool: where its length entry and its bytes are (for in-place patching). */
export interface PoolString {
  id: number;
  value: string;
  refs: number;
  /** Byte offset of its 4-byte entry in _StringPool (of the second entry for a long string). */
  entryOffset: number;
  /** Byte offset and length of its bytes in _StringData. */
  dataOffset: number;
  length: number;
  /** Over 64 KiB: its length is split over two pool entries. */
  long: boolean;
}

export class MsiDatabase {
  private readonly streams = new Map<string, () => Buffer>();
  private readonly strings: string[] = [''];
  private readonly strRefBytes: number;
  private readonly columns = new Map<string, Column[]>();
  private readonly rawNames = new Map<string, string>();
  readonly tableNames: string[];
  readonly directory: CompoundDirectory;
  /** Every non-empty string of the pool, with its place. */
  readonly pool: PoolString[] = [];
  readonly stringEncoding: BufferEncoding;

  constructor(input: Buffer | ByteSource) {
    try {
      this.directory = readCompoundDirectory(input);
    } catch (e) {
      if (e instanceof CompoundFileError) bad(e.message);
      throw e;
    }
    for (const [raw, data] of this.directory.streams) {
      this.streams.set(decodeStreamName(raw), data);
      this.rawNames.set(decodeStreamName(raw), raw);
    }
    const pool = this.stream('_StringPool');
    const data = this.stream('_StringData');
    const codepage = pool.length >= 4 ? pool.readUInt32LE(0) : 0;
    this.strRefBytes = codepage & 0x80000000 ? 3 : 2;
    const encoding: BufferEncoding = (codepage & 0x7fffffff) === 65001 ? 'utf8' : 'latin1';
    this.stringEncoding = encoding;
    const count = pool.length / 4;
    let offset = 0;
    for (let i = 1, n = 1; i < count; ) {
      const len16 = pool.readUInt16LE(i * 4);
      const refs = pool.readUInt16LE(i * 4 + 2);
      if (len16 === 0 && refs === 0) {
        this.strings[n++] = '';
        i++;
        continue;
      }
      let len: number;
      const long = len16 === 0;
      const entryOffset = long ? i * 4 + 4 : i * 4;
      if (long) {
        len = (pool.readUInt16LE(i * 4 + 6) << 16) + pool.readUInt16LE(i * 4 + 4);
        i += 2;
      } else {
        len = len16;
        i++;
      }
      const value = data.toString(encoding, offset, offset + len);
      this.pool.push({ id: n, value, refs, entryOffset, dataOffset: offset, length: len, long });
      this.strings[n++] = value;
      offset += len;
    }
    // _Tables: one string column; _Columns: Table, Number, Name, Type
    this.tableNames = this.readRaw('_Tables', [
      { name: 'Name', number: 1, type: MSITYPE_STRING | 0x100 },
    ]).map((r) => r['Name']!);
    const cols = this.readRaw('_Columns', [
      { name: 'Table', number: 1, type: MSITYPE_STRING },
      { name: 'Number', number: 2, type: 2 },
      { name: 'Name', number: 3, type: MSITYPE_STRING },
      { name: 'Type', number: 4, type: 2 },
    ]);
    for (const c of cols) {
      const list = this.columns.get(c['Table']!) ?? [];
      // Type is stored like any 2-byte integer: value + 0x8000 (readRaw undid that)
      list.push({ name: c['Name']!, number: Number(c['Number']), type: Number(c['Type']) & 0xffff });
      this.columns.set(c['Table']!, list);
    }
    for (const list of this.columns.values()) list.sort((a, b) => a.number - b.number);
  }

  private stream(name: string): Buffer {
    return this.streams.get(TABLE_PREFIX + name)?.() ?? Buffer.alloc(0);
  }

  private width(type: number): number {
    if (type & MSITYPE_STRING) return this.strRefBytes;
    return (type & 0xff) <= 2 ? 2 : 4;
  }

  private readRaw(table: string, columns: Column[]): Record<string, string>[] {
    const cols = columns.filter((c) => !(c.type & MSITYPE_TEMPORARY));
    const data = this.stream(table);
    const rowSize = cols.reduce((n, c) => n + this.width(c.type), 0);
    if (!rowSize) return [];
    const rows = Math.floor(data.length / rowSize);
    const out: Record<string, string>[] = Array.from({ length: rows }, () => ({}));
    let base = 0;
    for (const c of cols) {
      const w = this.width(c.type);
      for (let r = 0; r < rows; r++) {
        const at = base + r * w;
        let value = '';
        if (c.type & MSITYPE_STRING) {
          const id = w === 3 ? data.readUInt16LE(at) + (data.readUInt8(at + 2) << 16) : data.readUInt16LE(at);
          value = this.strings[id] ?? '';
        } else if (w === 2) {
          const v = data.readUInt16LE(at);
          value = v === 0 ? '' : String(v - 0x8000);
        } else {
          const v = data.readUInt32LE(at);
          value = v === 0 ? '' : String((v ^ 0x80000000) | 0);
        }
        out[r]![c.name] = value;
      }
      base += w * rows;
    }
    return out;
  }

  /** The raw (Compound File) name of a stream, by its decoded MSI name ('\u4840File', 'site.cab'). */
  rawStreamName(decoded: string): string | undefined {
    return this.rawNames.get(decoded);
  }

  /** Where one cell of a table lies in the table's stream (row index as `table()` lists the rows). */
  cell(
    table: string,
    row: number,
    column: string,
  ): { stream: string; offset: number; width: number; type: number } {
    const cols = (this.columns.get(table) ?? []).filter((c) => !(c.type & MSITYPE_TEMPORARY));
    const data = this.stream(table);
    const rowSize = cols.reduce((n, c) => n + this.width(c.type), 0);
    const rows = rowSize ? Math.floor(data.length / rowSize) : 0;
    if (row < 0 || row >= rows) bad(`${table}: no row ${row}`);
    let base = 0;
    for (const c of cols) {
      const w = this.width(c.type);
      if (c.name === column)
        return { stream: TABLE_PREFIX + table, offset: base + row * w, width: w, type: c.type };
      base += w * rows;
    }
    return bad(`${table}: no column ${column}`);
  }

  table(name: string): MsiTable | undefined {
    const cols = this.columns.get(name);
    if (!cols || !this.tableNames.includes(name)) return undefined;
    return { columns: cols.map((c) => c.name), rows: this.readRaw(name, cols) };
  }

  /** The table as IDT text (what `msiinfo export` prints), for re-import with msibuild. */
  exportIdt(name: string): string | undefined {
    const cols = this.columns.get(name);
    const table = this.table(name);
    if (!cols || !table) return undefined;
    const typeName = (t: number) => {
      const nullable = Boolean(t & 0x1000);
      if (t & MSITYPE_STRING) {
        if ((t & 0xff) === 0 && !(t & 0x200) && (t & ~0x1000) === (MSITYPE_STRING | 0x100))
          return nullable ? 'V0' : 'v0';
        const letter = t & 0x200 ? 'l' : 's';
        return `${nullable ? letter.toUpperCase() : letter}${t & 0xff}`;
      }
      return `${nullable ? 'I' : 'i'}${(t & 0xff) <= 2 ? 2 : 4}`;
    };
    const keys = cols.filter((c) => c.type & 0x2000).map((c) => c.name);
    const lines = [
      cols.map((c) => c.name).join('\t'),
      cols.map((c) => typeName(c.type)).join('\t'),
      [name, ...keys].join('\t'),
      ...table.rows.map((r) => cols.map((c) => r[c.name] ?? '').join('\t')),
    ];
    return `${lines.join('\r\n')}\r\n`;
  }

  /** Summary information property (PID) as a string, e.g. 7 = Template. */
  summary(pid: number): string | undefined {
    const s = this.streams.get('\u0005SummaryInformation')?.();
    if (!s || s.length < 48) return undefined;
    const section = s.readUInt32LE(44);
    const count = s.readUInt32LE(section + 4);
    for (let i = 0; i < count; i++) {
      if (s.readUInt32LE(section + 8 + i * 8) !== pid) continue;
      const at = section + s.readUInt32LE(section + 12 + i * 8);
      const type = s.readUInt32LE(at);
      if (type === 30) {
        const len = s.readUInt32LE(at + 4);
        return s.toString('latin1', at + 8, at + 8 + len).replace(/\0+$/, '');
      }
      if (type === 2) return String(s.readInt16LE(at + 4));
      if (type === 3) return String(s.readInt32LE(at + 4));
      return undefined;
    }
    return undefined;
  }
}

/** Opens an MSI file, runs `fn` on it, closes it. */
export function withMsiDatabase<T>(path: string, fn: (db: MsiDatabase) => T): T {
  const fd = openSync(path, 'r');
  try {
    return fn(new MsiDatabase(fileSource(fd)));
  } finally {
    closeSync(fd);
  }
}

/** The tables and the Template of an MSI file, in the shape the lint reads. */
export function readMsiFactsInProcess(path: string, tables: readonly string[]): MsiFacts {
  const fd = openSync(path, 'r');
  try {
    const db = new MsiDatabase(fileSource(fd));
    const out: Record<string, MsiTable> = {};
    for (const t of tables) {
      const table = db.table(t);
      if (table) out[t] = table;
    }
    return { tables: out, template: db.summary(7) ?? '' };
  } finally {
    closeSync(fd);
  }
}
