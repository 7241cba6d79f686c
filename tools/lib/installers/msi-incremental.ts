/**
 * Incremental MSI: one base MSI per release, and per site a copy with fixed places rewritten.
 *
 * The base is the site's template rendered with placeholder tokens for the per-site values
 * (site code, key version, fingerprint: as long as those values can be; ProductCode: a GUID) and a
 * dummy site.json of the slot's size, built by wixl + msibuild like a full build. Then site.json
 * moves to its own, uncompressed cabinet on a second Media row (wixl cannot do that itself): the
 * wixl cabinet is unpacked and re-packed without it (gcab), the site cabinet is written in-process
 * (cab.ts), and both are re-imported with msibuild.
 *
 * Per site (assembleMsiSite), on a copy of the base, through the Compound File layout read once:
 * the site cabinet stream (site.json, its CFDATA checksums), File.FileSize and the MsiFileHash row
 * of SiteJson, the pool strings that carry a token (rewritten in _StringData, their lengths in
 * _StringPool; the stream only shrinks, surplus sectors are freed) and the SummaryInformation
 * (PackageCode, and string properties that carry a token). Nothing else differs from the base.
 */
import { createHash, randomInt, randomUUID } from 'node:crypto';
import {
  closeSync,
  copyFileSync,
  linkSync,
  mkdirSync,
  openSync,
  readFileSync,
  write,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { type StreamLayout, sameBytes } from '../cfb.ts';
import { SignetError } from '../errors.ts';
import type { Runner } from '../exec/runner.ts';
import type { SharedPrefix } from '../exec/spawn-helper.ts';
import { msiHashOrder } from '../sign/msi-image.ts';
import { cabinetSize, readCabinetFile, writeCabinet } from './cab.ts';
import { extractMsi, listFiles, sha256Of } from './checks.ts';
import type { ProductConfig } from './config.ts';
import { renderWix, runWixl, WIX_SOURCE } from './msi.ts';
import { encodeStreamName, MsiDatabase, withMsiDatabase } from './msi-db.ts';
import {
  fitsStream,
  patchStream,
  placeSharedFirst,
  rewriteStream,
  rewriteSummary,
  summaryStrings,
} from './msi-patch.ts';
import type { LoadedTemplate } from './template.ts';

/** A WiX template opts in with this comment: its site.json (File SiteJson) may move to a slot. */
export const INCREMENTAL_MARKER = /<!--\s*signet:incremental\b/;
/** The per-site WiX variables, replaced by tokens in the base and patched per site. */
export const PER_SITE_WIX_VARIABLES = [
  'PRODUCT_CODE',
  'SITE_CODE',
  'KEY_VERSION',
  'FINGERPRINT_HEX',
] as const;
export const SITE_CAB = 'site.cab';
const SITE_FILE = 'SiteJson';
/** The site cabinet is never smaller (so it never moves to the mini stream). */
const MIN_CAB = 4096;
const PID_REVNUMBER = 9;
const SUMMARY_STREAM = '\u0005SummaryInformation';

/** Slot size for a batch: the largest site.json, 25 % and 1 KiB of headroom, in 4 KiB steps. */
export function msiSlotSize(largestSiteJson: number): number {
  return Math.ceil((largestSiteJson * 1.25 + 1024) / 4096) * 4096;
}

export interface SiteValues {
  siteCode: string;
  keyVersion: number;
  fingerprintHex: string;
}

interface Tokens {
  siteCode: string;
  keyVersion: string;
  fingerprintHex: string;
  productCode: string;
}

interface StringSlot {
  id: number;
  entryOffset: number;
  /** The base's value, tokens in it. */
  template: string;
}

/** What a site's assembly writes where (the base's layout, read once). */
interface PatchPlan {
  miniCutoff: number;
  siteCab: StreamLayout;
  stringData: { layout: StreamLayout; bytes: Buffer };
  stringPool: StreamLayout;
  encoding: BufferEncoding;
  pool: { id: number; dataOffset: number; length: number; value: string }[];
  slots: StringSlot[];
  summary: { layout: StreamLayout; bytes: Buffer; slots: Map<number, string> };
  fileSize: { layout: StreamLayout; offset: number };
  fileHash?: { layout: StreamLayout; offsets: [number, number, number, number] };
}

export interface MsiBase {
  path: string;
  sha256: string;
  key: string;
  /** The largest site.json the site cabinet holds. */
  slot: number;
  /** SHA-256 of each cabinet stream but the site's (the agent's bytes: checked once, by msiextract). */
  cabinets: Record<string, string>;
  /** Raw (Compound File) names of the streams every site's file holds as they are: those cabinets. */
  unchanged: string[];
  /**
   * Bytes at the start of the file that every site's copy has as they are (the header, those
   * cabinets, free sectors): the file hash of a site's MSI continues from the base's state there.
   */
  prefix: number;
  tokens: Tokens;
  plan: PatchPlan;
}

export interface MsiBaseOptions {
  template: LoadedTemplate;
  /** Every WiX variable but the per-site ones. */
  values: Record<string, string>;
  product: ProductConfig;
  agentPath: string;
  agentSha256: string;
  agentFileName: string;
  iconPath?: string;
  slot: number;
  /** An empty private folder for the base's build. */
  work: string;
  runner: Runner;
  /** Identifies the release inputs (cache key of the base). */
  key: string;
}

export type Fallback = { fallback: string };

function fail(what: string): never {
  throw new SignetError('E_INSTALLER_BUILD_FAILED', `incremental MSI base: ${what}`);
}

function newTokens(): Tokens {
  const hex = () => randomUUID().replace(/-/g, '').toUpperCase();
  return {
    siteCode: `SIGNETSLOT${hex()}${hex()}`.slice(0, 64),
    keyVersion: String(randomInt(900_000_000, 999_999_999)),
    fingerprintHex: hex().slice(0, 4),
    productCode: randomUUID().toUpperCase(),
  };
}

function substitute(template: string, t: Tokens, site: SiteValues, productCode: string): string {
  return template
    .split(t.siteCode)
    .join(site.siteCode)
    .split(t.keyVersion)
    .join(String(site.keyVersion))
    .split(t.fingerprintHex)
    .join(site.fingerprintHex)
    .split(t.productCode)
    .join(productCode);
}

/**
 * The agent's cabinet's name in the base: the template's, when Authenticode's hash order (by raw
 * name) already puts it before the summary information, which differs per site; else the same
 * name behind `00`, which does. Every site's MSI digest then continues from the base's state after
 * that cabinet (sign/msi-image.ts, msiSharedStreams), instead of reading it again.
 */
export function firstInHashOrder(cabName: string, taken: (name: string) => boolean = () => false): string {
  const first = (n: string) => msiHashOrder(encodeStreamName(n), SUMMARY_STREAM) < 0;
  if (first(cabName)) return cabName;
  const renamed = `00${cabName}`;
  // a Compound File name holds 31 units (two name characters share one); msibuild's `-a` would
  // overwrite a stream of that name silently
  const fits = encodeStreamName(renamed).length <= 31 && /^[A-Za-z0-9._]+$/.test(cabName);
  return fits && !taken(renamed) ? renamed : cabName;
}

/** True when a base can be built from this template (else a full rebuild per site). */
export function templateDeclaresSlots(template: LoadedTemplate): boolean {
  return INCREMENTAL_MARKER.test(template.text) && /<File\s[^>]*Id="SiteJson"/.test(template.text);
}

/** Builds the release's base MSI, or says why this release must be built in full. */
export async function buildMsiBase(o: MsiBaseOptions): Promise<MsiBase | Fallback> {
  if (!templateDeclaresSlots(o.template))
    return { fallback: 'the WiX template does not declare the site slot' };
  const tokens = newTokens();
  const work = o.work;
  mkdirSync(join(work, 'payload'), { recursive: true });
  try {
    linkSync(o.agentPath, join(work, 'payload', 'agent.exe'));
  } catch {
    copyFileSync(o.agentPath, join(work, 'payload', 'agent.exe'));
  }
  if (o.iconPath) copyFileSync(o.iconPath, join(work, 'payload', 'product.ico'));
  const dummy = Buffer.alloc(o.slot, 0x20);
  writeFileSync(join(work, 'payload', 'site.json'), dummy);
  const values = {
    ...o.values,
    PRODUCT_CODE: tokens.productCode,
    SITE_CODE: tokens.siteCode,
    KEY_VERSION: tokens.keyVersion,
    FINGERPRINT_HEX: tokens.fingerprintHex,
  };
  writeFileSync(join(work, WIX_SOURCE), renderWix(o.template.text, values, o.template.path));
  const msi = await runWixl({ runner: o.runner, workDir: work, product: o.product });

  // site.json to its own cabinet, on Media 2
  const layout = withMsiDatabase(msi, (db) => {
    const media = db.table('Media')?.rows ?? [];
    const files = [...(db.table('File')?.rows ?? [])].sort(
      (a, b) => Number(a['Sequence']) - Number(b['Sequence']),
    );
    return { media, files, cab: media[0]?.['Cabinet'] ?? '' };
  });
  if (layout.media.length !== 1 || !layout.cab.startsWith('#'))
    return { fallback: 'the MSI does not have exactly one embedded cabinet' };
  const last = layout.files.at(-1);
  if (
    last?.['File'] !== SITE_FILE ||
    layout.files.some((f) => f['File'] !== SITE_FILE && /[^A-Za-z0-9._]/.test(f['File'] ?? ''))
  )
    return { fallback: 'site.json is not the last file of the MSI' };
  const cabName = layout.cab.slice(1);
  const { cabBytes, mainName } = withMsiDatabase(msi, (db) => {
    const raw = db.rawStreamName(cabName);
    return {
      cabBytes: raw ? db.directory.streams.get(raw)?.() : undefined,
      mainName: firstInHashOrder(cabName, (n) => db.rawStreamName(n) !== undefined),
    };
  });
  if (!cabBytes) fail(`cabinet stream ${cabName} not found`);
  const unpacked = join(work, 'cab-x');
  mkdirSync(unpacked);
  writeFileSync(join(work, 'wixl.cab'), cabBytes);
  await o.runner.run('gcab', ['-x', '-C', unpacked, join(work, 'wixl.cab')], {
    label: 'gcab -x',
    timeoutMs: 300_000,
  });
  const mainCab = join(work, 'main.cab');
  const keep = layout.files.slice(0, -1).map((f) => f['File']!);
  await o.runner.run('gcab', ['-c', '-z', '-n', mainCab, ...keep], {
    cwd: unpacked,
    label: 'gcab -c',
    timeoutMs: 300_000,
    outputs: [mainCab],
  });
  const siteCab = join(work, SITE_CAB);
  writeFileSync(siteCab, writeCabinet({ name: SITE_FILE, data: dummy }, MIN_CAB));
  const lastSeq = Number(last['Sequence']);
  await o.runner.run(
    'msibuild',
    [
      msi,
      ...(mainName === cabName ? [] : ['-q', `DELETE FROM \`_Streams\` WHERE \`Name\` = '${cabName}'`]),
      '-a',
      mainName,
      mainCab,
      '-a',
      SITE_CAB,
      siteCab,
      '-q',
      `UPDATE \`Media\` SET \`LastSequence\` = ${lastSeq - 1}${mainName === cabName ? '' : `, \`Cabinet\` = '#${mainName}'`} WHERE \`DiskId\` = 1`,
      '-q',
      `INSERT INTO \`Media\` (\`DiskId\`, \`LastSequence\`, \`Cabinet\`) VALUES (2, ${lastSeq}, '#${SITE_CAB}')`,
    ],
    { cwd: work, label: 'msibuild (site cabinet)', timeoutMs: 120_000, outputs: [msi] },
  );

  // the cabinets every site holds as they are go first in the file, then what sites change
  const prefix = placeSharedFirst(
    msi,
    withMsiDatabase(msi, (db) =>
      (db.table('Media')?.rows ?? [])
        .map((r) => (r['Cabinet'] ?? '').slice(1))
        .filter((name) => name !== SITE_CAB)
        .flatMap((name) => db.rawStreamName(name) ?? []),
    ),
  );

  // the agent (and any other payload) comes out of the base byte for byte
  const x = join(work, 'x');
  await extractMsi(o.runner, msi, x);
  const agent = listFiles(x).filter(
    (f) => f.split('/').pop()?.toLowerCase() === o.agentFileName.toLowerCase(),
  );
  if (agent.length !== 1 || sha256Of(agent[0]!) !== o.agentSha256)
    fail('the agent extracted from the base differs');

  const plan = readPlan(msi, tokens, mainName);
  if ('fallback' in plan) return plan;
  const { cabinets, unchanged } = withMsiDatabase(msi, (db) => {
    const out: Record<string, string> = {};
    const raws: string[] = [];
    for (const r of db.table('Media')?.rows ?? []) {
      const name = (r['Cabinet'] ?? '').slice(1);
      if (name === SITE_CAB) continue;
      const raw = db.rawStreamName(name);
      const bytes = raw ? db.directory.streams.get(raw)?.() : undefined;
      if (!raw || !bytes) fail(`cabinet stream ${name} not found`);
      out[name] = createHash('sha256').update(bytes).digest('hex');
      raws.push(raw);
    }
    return { cabinets: out, unchanged: raws };
  });
  return {
    path: msi,
    sha256: sha256Of(msi),
    key: o.key,
    slot: o.slot,
    cabinets,
    unchanged,
    prefix,
    tokens,
    plan: plan.plan,
  };
}

function readPlan(msi: string, tokens: Tokens, mainCab: string): { plan: PatchPlan } | Fallback {
  const db = new MsiDatabase(readFileSync(msi));
  const dir = db.directory;
  const layoutOf = (decoded: string) => {
    const raw = db.rawStreamName(decoded);
    const l = raw ? dir.layouts.get(raw)?.() : undefined;
    if (!l) fail(`stream ${JSON.stringify(decoded)} not found`);
    return l;
  };
  const all = [tokens.siteCode, tokens.keyVersion, tokens.fingerprintHex, tokens.productCode];
  // tokens may live only in the string pool and the summary: anywhere else they would stay
  // (the 4-hex-digit fingerprint token is not searched in binary streams: it occurs by chance)
  const skip = new Set(
    ['\u4840_StringData', mainCab, SITE_CAB].map((n) => db.rawStreamName(n)).concat(SUMMARY_STREAM),
  );
  const strongTokens = [tokens.siteCode, tokens.keyVersion, tokens.productCode];
  for (const [raw, read] of dir.streams) {
    if (skip.has(raw)) continue;
    const bytes = read();
    for (const t of strongTokens)
      if (bytes.includes(t, 0, 'latin1') || bytes.includes(Buffer.from(t, 'utf16le')))
        return { fallback: 'a per-site value is used outside the string pool and the summary' };
  }
  const slots: StringSlot[] = [];
  for (const s of db.pool) {
    const strong = [tokens.siteCode, tokens.keyVersion, tokens.productCode].some((t) => s.value.includes(t));
    if (!strong && !s.value.includes(tokens.fingerprintHex)) continue;
    // a fingerprint token alone could be a coincidence inside a GUID: refuse rather than guess
    if (!strong) return { fallback: 'a per-site value is not recognisable in the string pool' };
    if (s.long) return { fallback: 'a per-site string is over 64 KiB' };
    slots.push({ id: s.id, entryOffset: s.entryOffset, template: s.value });
  }
  if (!slots.some((s) => s.template === `{${tokens.productCode}}`))
    fail('the ProductCode is not in the string pool');
  const files = db.table('File')?.rows ?? [];
  const row = files.findIndex((r) => r['File'] === SITE_FILE);
  const fs = db.cell('File', row, 'FileSize');
  const hashes = db.table('MsiFileHash')?.rows ?? [];
  const hrow = hashes.findIndex((r) => r['File_'] === SITE_FILE);
  let fileHash: PatchPlan['fileHash'];
  if (hrow >= 0) {
    const c = (n: number) => db.cell('MsiFileHash', hrow, `HashPart${n}`);
    const cells = [c(1), c(2), c(3), c(4)];
    if (cells.some((x) => x.width !== 4)) fail('MsiFileHash has an unexpected shape');
    fileHash = {
      layout: layoutOf(cells[0]!.stream),
      offsets: cells.map((x) => x.offset) as [number, number, number, number],
    };
  }
  if (fs.width !== 4) fail('File.FileSize has an unexpected shape');
  const summaryBytes = Buffer.from(dir.streams.get(SUMMARY_STREAM)?.() ?? fail('no SummaryInformation'));
  const summarySlots = new Map<number, string>();
  for (const [pid, v] of summaryStrings(summaryBytes)) {
    const text = v.toString('latin1');
    if (all.some((t) => text.includes(t))) summarySlots.set(pid, text);
  }
  if (!summaryStrings(summaryBytes).has(PID_REVNUMBER)) fail('no PackageCode in the summary');
  return {
    plan: {
      miniCutoff: dir.miniCutoff,
      siteCab: layoutOf(SITE_CAB),
      stringData: {
        layout: layoutOf('\u4840_StringData'),
        // a copy: the read may be a view of the whole MSI, which the plan must not keep alive
        bytes: Buffer.from(dir.streams.get(db.rawStreamName('\u4840_StringData')!)!()),
      },
      stringPool: layoutOf('\u4840_StringPool'),
      encoding: db.stringEncoding,
      pool: db.pool.map((s) => ({ id: s.id, dataOffset: s.dataOffset, length: s.length, value: s.value })),
      slots,
      summary: { layout: dir.layouts.get(SUMMARY_STREAM)!(), bytes: summaryBytes, slots: summarySlots },
      fileSize: { layout: layoutOf(fs.stream), offset: fs.offset },
      ...(fileHash ? { fileHash } : {}),
    },
  };
}

/** The MSI file hash of a file (MsiFileHash): MD5 as four 32-bit little-endian integers. */
/** The base's bytes, read and checked against its SHA-256 once per base object. */
const baseCache = new WeakMap<MsiBase, Buffer>();

function baseBytes(base: MsiBase): Buffer {
  let b = baseCache.get(base);
  if (!b) {
    b = readFileSync(base.path);
    if (createHash('sha256').update(b).digest('hex') !== base.sha256)
      throw new SignetError(
        'E_INSTALLER_CHECK_FAILED',
        `MSI base ${base.path} changed since it was built (SHA-256 differs)`,
      );
    baseCache.set(base, b);
  }
  return b;
}

export function msiFileHash(data: Buffer): [number, number, number, number] {
  const d = createHash('md5').update(data).digest();
  return [d.readInt32LE(0), d.readInt32LE(4), d.readInt32LE(8), d.readInt32LE(12)];
}

export interface AssembledMsi {
  path: string;
  productCode: string;
  packageCode: string;
}

const int4 = (v: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE((v ^ 0x80000000) >>> 0);
  return b;
};

/**
 * Writes the site's MSI at `out` from the base: a copy with the site's regions rewritten in place
 * (the copy's bytes written off the calling thread).
 * A site that does not fit (site.json over the slot, a per-site value equal to another string of
 * the pool) is a fallback, not an error.
 */
export async function assembleMsiSite(
  base: MsiBase,
  site: SiteValues,
  siteJson: Buffer,
  out: string,
): Promise<AssembledMsi | Fallback> {
  const p = base.plan;
  if (
    siteJson.length > base.slot ||
    cabinetSize('SiteJson', siteJson.length) > p.siteCab.units.length * p.siteCab.unit
  )
    return {
      fallback: `site.json (${siteJson.length} bytes) is larger than the release's slot (${base.slot})`,
    };
  const cab = writeCabinet({ name: SITE_FILE, data: siteJson }, MIN_CAB);
  if (!fitsStream(p.siteCab, cab.length, p.miniCutoff))
    return { fallback: 'the site cabinet does not fit its slot' };
  const productCode = randomUUID().toUpperCase();
  const packageCode = randomUUID().toUpperCase();

  // the string pool: every string as it was, the slot strings with the site's values
  const slotById = new Map(p.slots.map((s) => [s.id, s]));
  const others = new Set(p.pool.filter((s) => !slotById.has(s.id)).map((s) => s.value));
  const parts: Buffer[] = [];
  const lengths = new Map<number, number>();
  for (const s of p.pool) {
    const slot = slotById.get(s.id);
    if (!slot) {
      parts.push(p.stringData.bytes.subarray(s.dataOffset, s.dataOffset + s.length));
      continue;
    }
    const value = substitute(slot.template, base.tokens, site, productCode);
    if (others.has(value)) return { fallback: 'a per-site value equals another string of the MSI' };
    const bytes = Buffer.from(value, p.encoding);
    if (bytes.length === 0 || bytes.length > 0xffff)
      return { fallback: 'a per-site string has an unusual length' };
    parts.push(bytes);
    lengths.set(slot.entryOffset, bytes.length);
  }
  const stringData = Buffer.concat(parts);
  if (!fitsStream(p.stringData.layout, stringData.length, p.miniCutoff))
    return { fallback: 'the string pool would change size class' };
  const summaryValues = new Map<number, Buffer>([[PID_REVNUMBER, Buffer.from(`{${packageCode}}`, 'latin1')]]);
  for (const [pid, t] of p.summary.slots)
    if (pid !== PID_REVNUMBER)
      summaryValues.set(pid, Buffer.from(substitute(t, base.tokens, site, productCode), 'latin1'));
  const summary = rewriteSummary(p.summary.bytes, summaryValues);
  if (!fitsStream(p.summary.layout, summary.length, p.miniCutoff))
    return { fallback: 'the summary information would change size class' };

  // written from the base's bytes in memory (a write costs a fraction of a kernel file copy
  // here), on a thread of the pool: the batch's thread goes on with other sites meanwhile
  // (measured: 3 to 5 % less wall time a site in a batch, the same CPU)
  const fd = openSync(out, 'wx', 0o600);
  try {
    const bytes = baseBytes(base);
    for (let at = 0; at < bytes.length; )
      at += await new Promise<number>((done, refuse) => {
        write(fd, bytes, at, bytes.length - at, at, (e, n) =>
          e || n <= 0 ? refuse(e ?? new Error(`${out}: nothing written at ${at}`)) : done(n),
        );
      });
    rewriteStream(fd, p.siteCab, cab, p.miniCutoff);
    rewriteStream(fd, p.stringData.layout, stringData, p.miniCutoff);
    for (const [entryOffset, len] of lengths) {
      const b = Buffer.alloc(2);
      b.writeUInt16LE(len);
      patchStream(fd, p.stringPool, entryOffset, b);
    }
    rewriteStream(fd, p.summary.layout, summary, p.miniCutoff);
    patchStream(fd, p.fileSize.layout, p.fileSize.offset, int4(siteJson.length));
    if (p.fileHash) {
      const h = msiFileHash(siteJson);
      const { layout, offsets } = p.fileHash;
      offsets.forEach((off, i) => {
        patchStream(fd, layout, off, int4(h[i]!));
      });
    }
  } finally {
    closeSync(fd);
  }
  return { path: out, productCode, packageCode };
}

/**
 * The per-site check that replaces extracting a site's MSI: every cabinet but the site's is the
 * base's byte for byte (the base's were extracted and checked once: the agent), and the site
 * cabinet holds exactly this site.json. Read in process from the signed file's streams. Throws
 * E_INSTALLER_CHECK_FAILED.
 *
 * `known`: what the file was found to start with when it was hashed (Artifact.sharedPrefix).
 * When that is the base's first `prefix` bytes (their SHA-256 compared with the base's own) and a
 * cabinet lies there in the base's sectors, its bytes are the base's: it is not read again.
 */
export function checkMsiSite(base: MsiBase, file: string, siteJson: Buffer, known?: SharedPrefix): void {
  const fail = (message: string): never => {
    throw new SignetError('E_INSTALLER_CHECK_FAILED', `${file}: ${message}`);
  };
  const baseDb = baseDatabase(base);
  const startsAsBase =
    known?.length === base.prefix && !known.except?.length && known.sha256 === basePrefixSha256(base);
  withMsiDatabase(file, (db) => {
    const media = (db.table('Media')?.rows ?? []).map((r) => (r['Cabinet'] ?? '').slice(1));
    const expected = [...Object.keys(base.cabinets), SITE_CAB].sort();
    if (JSON.stringify([...media].sort()) !== JSON.stringify(expected))
      fail(`its cabinets (${media.join(', ')}) are not the base's`);
    const pieces = (d: MsiDatabase, name: string, into: Buffer) => {
      const raw = d.rawStreamName(name);
      const read = raw ? d.directory.pieces.get(raw) : undefined;
      return read ? read(into) : fail(`cabinet stream ${name} not found`);
    };
    // byte for byte against the base's cabinets (checked once, when the base was built: the
    // agent), read side by side: two reads and a compare cost less than a hash of either
    checkBuffers ??= [Buffer.allocUnsafe(1 << 20), Buffer.allocUnsafe(1 << 20)];
    for (const name of Object.keys(base.cabinets)) {
      if (startsAsBase && inSharedPrefix(db, baseDb, name, base.prefix)) continue;
      if (!sameBytes(pieces(db, name, checkBuffers[0]), pieces(baseDb, name, checkBuffers[1])))
        fail(`cabinet ${name} differs from the base's`);
    }
    const raw = db.rawStreamName(SITE_CAB);
    const bytes = raw ? db.directory.streams.get(raw)?.() : undefined;
    const site = readCabinetFile(bytes ?? fail(`cabinet stream ${SITE_CAB} not found`));
    if (site.name !== SITE_FILE || !site.data.equals(siteJson)) fail("its site.json is not this site's");
  });
}

/**
 * True when the stream has the base's start sector and size, and the site's FAT chains it through
 * the base's sectors (every entry along the base's chain equal), all within the first `prefix`
 * bytes. (Compares the FAT entries as read: no layout is built for a 10 MB chain.)
 */
function inSharedPrefix(db: MsiDatabase, baseDb: MsiDatabase, name: string, prefix: number): boolean {
  const entryOf = (d: MsiDatabase) => {
    const raw = d.rawStreamName(name);
    const s = d.directory.structure;
    const e = raw === undefined ? undefined : s.top.find((t) => t.name === raw);
    if (e?.type !== 2) return undefined;
    const o = e.index * 128;
    return {
      start: s.dir.readUInt32LE(o + 0x74),
      size: s.dir.readUInt32LE(o + 0x78) + s.dir.readUInt32LE(o + 0x7c) * 2 ** 32,
    };
  };
  const site = entryOf(db);
  const own = entryOf(baseDb);
  const ss = baseDb.directory.structure.sectorSize;
  if (!site || !own || site.start !== own.start || site.size !== own.size) return false;
  if (db.directory.structure.sectorSize !== ss || own.size < baseDb.directory.miniCutoff) return false;
  const fat = db.directory.structure.fat;
  const baseFat = baseDb.directory.structure.fat;
  let n = own.start;
  for (let left = Math.ceil(own.size / ss); left > 0; left--) {
    if (n >= baseFat.length || fat[n] !== baseFat[n] || (n + 2) * ss > prefix) return false;
    n = baseFat[n]!;
  }
  return true;
}

const prefixShaCache = new WeakMap<MsiBase, string>();

/** SHA-256 of the base's first `prefix` bytes (of its bytes in memory, checked once). */
function basePrefixSha256(base: MsiBase): string {
  let h = prefixShaCache.get(base);
  if (!h) {
    h = createHash('sha256').update(baseBytes(base).subarray(0, base.prefix)).digest('hex');
    prefixShaCache.set(base, h);
  }
  return h;
}

/** The base's database over its bytes in memory (read and checked once, see baseBytes). */
const baseDbCache = new WeakMap<MsiBase, MsiDatabase>();

function baseDatabase(base: MsiBase): MsiDatabase {
  let db = baseDbCache.get(base);
  if (!db) {
    db = new MsiDatabase(baseBytes(base));
    baseDbCache.set(base, db);
  }
  return db;
}

/** The buffers checkMsiSite reads through (one pair per process: its reads are synchronous). */
let checkBuffers: [Buffer, Buffer] | undefined;
