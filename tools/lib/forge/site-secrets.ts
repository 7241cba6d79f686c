/**
 * Finds files that carry a site's secrets, by content (never by name): a per-site installer holds
 * its site's site.json with the enrollment key, and anyone holding it can unpack it (`7z x`,
 * `msiextract`). The publish preflight refuses them unless explicitly allowed.
 *
 * - MSI (Compound File magic): the File table, read in-process, installs a `site.json`.
 * - PE: only a PE with data after its sections (an overlay besides the Authenticode certificate
 *   table) can carry an archive; an NSIS installer is recognised by its first header right there
 *   (`0xDEADBEEF "NullsoftInst"`), and the archive is listed with `7z l -slt` for a `site.json`.
 *   A plain agent costs one 4 KiB read and no process.
 * - JSON: Signet's per-site manifest (`tool.name: signet`, `site.siteCode`, `outputs`) and a
 *   bare site.json (`enrollment.key`).
 */
import { closeSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import pLimit from 'p-limit';
import { SignetError } from '../errors.ts';
import { defaultRunner, type Runner } from '../exec/runner.ts';
import { withMsiDatabase } from '../installers/msi-db.ts';
import { OVERLAY_MAGIC, readNsisOverlayRecord } from '../installers/nsis-incremental.ts';
import { logger } from '../log.ts';

export interface SiteSecretFinding {
  path: string;
  name: string;
  /** What the file is, e.g. "NSIS installer carrying site.json". */
  what: string;
}

const CFB_MAGIC = Buffer.from('d0cf11e0a1b11ae1', 'hex');
const NSIS_MAGIC = Buffer.concat([Buffer.from('efbeadde', 'hex'), Buffer.from('NullsoftInst')]);
const HEAD = 4096;
const MAX_JSON = 16 * 1024 * 1024;

function readAt(fd: number, offset: number, length: number): Buffer {
  const b = Buffer.alloc(length);
  return b.subarray(0, readSync(fd, b, 0, length, offset));
}

interface PeLayout {
  /** End of the last section's raw data: where an appended archive starts. */
  sectionsEnd: number;
  cert?: { offset: number; size: number };
}

/** Section table and certificate directory of a PE, or undefined when it is not one. */
function peLayout(head: Buffer, fd: number): PeLayout | undefined {
  if (head.length < 0x40 || head[0] !== 0x4d || head[1] !== 0x5a) return undefined;
  const pe = head.readUInt32LE(0x3c);
  if (pe > 0x10000) return undefined;
  const hdr = pe + 24 <= head.length ? head : readAt(fd, 0, pe + 24 + 240 + 40 * 96);
  if (pe + 24 > hdr.length || hdr.readUInt32LE(pe) !== 0x00004550) return undefined;
  const sections = Math.min(hdr.readUInt16LE(pe + 6), 96);
  const optSize = hdr.readUInt16LE(pe + 20);
  const opt = pe + 24;
  const table = opt + optSize;
  const need = table + sections * 40;
  const buf = need <= hdr.length ? hdr : readAt(fd, 0, need);
  if (need > buf.length) return undefined;
  let sectionsEnd = 0;
  for (let i = 0; i < sections; i++) {
    const rawSize = buf.readUInt32LE(table + i * 40 + 16);
    const rawPtr = buf.readUInt32LE(table + i * 40 + 20);
    if (rawSize) sectionsEnd = Math.max(sectionsEnd, rawPtr + rawSize);
  }
  const magic = buf.readUInt16LE(opt);
  const dirs = opt + (magic === 0x20b ? 112 : 96);
  const layout: PeLayout = { sectionsEnd };
  if (dirs + 5 * 8 <= table) {
    const offset = buf.readUInt32LE(dirs + 4 * 8);
    const size = buf.readUInt32LE(dirs + 4 * 8 + 4);
    if (offset && size) layout.cert = { offset, size };
  }
  return layout;
}

/** Whether the bytes after the sections (the certificate table excluded) contain `needle`. */
function overlayHolds(fd: number, layout: PeLayout, size: number, needle: Buffer): boolean {
  const c = layout.cert;
  const valid = c && c.offset >= layout.sectionsEnd && c.offset + c.size <= size;
  const spans: [number, number][] = valid
    ? [
        [layout.sectionsEnd, c.offset],
        [c.offset + c.size, size],
      ]
    : [[layout.sectionsEnd, size]];
  const chunk = 1 << 20;
  for (const [from, to] of spans)
    for (let at = from; at < to; at += chunk - needle.length) {
      const part = readAt(fd, at, Math.min(chunk, to - at));
      if (part.includes(needle)) return true;
      if (at + part.length >= to) break;
    }
  return false;
}

/** Bytes after the sections other than the certificate table (and its 8-byte alignment padding). */
function overlayBytes(layout: PeLayout, size: number): number {
  let extra = Math.max(0, size - layout.sectionsEnd);
  const c = layout.cert;
  if (c && c.offset >= layout.sectionsEnd && c.offset + c.size <= size) extra -= c.size;
  return extra > 8 ? extra : 0;
}

async function sevenZipListsSiteJson(runner: Runner, path: string): Promise<boolean | undefined> {
  const r = await runner.run('7z', ['l', '-slt', '-bd', '--', path], {
    allowFailure: true,
    timeoutMs: 120_000,
    label: '7z l (site installer check)',
  });
  if (r.exitCode !== 0) return undefined;
  return r.stdout
    .split('\n')
    .filter((l) => l.startsWith('Path = '))
    .some((l) => l.slice(7).trim().split(/[\\/]/).pop()?.toLowerCase() === 'site.json');
}

function msiCarriesSiteJson(path: string): boolean | undefined {
  try {
    return withMsiDatabase(path, (db) =>
      (db.table('File')?.rows ?? []).some(
        (row) =>
          // Signet's key for site.json whatever a custom template names the file, or the name itself
          row['File'] === 'SiteJson' ||
          (row['FileName'] ?? '').split('|').some((n) => n.trim().toLowerCase() === 'site.json'),
      ),
    );
  } catch {
    return undefined; // not an MSI database (another Compound File): Windows Installer cannot run it either
  }
}

function jsonKind(path: string, size: number, head: Buffer): string | undefined {
  const start = head.subarray(head[0] === 0xef && head[1] === 0xbb && head[2] === 0xbf ? 3 : 0);
  if (size > MAX_JSON || !/^\s*\{/.test(start.toString('latin1', 0, 64))) return undefined;
  let doc: unknown;
  try {
    doc = JSON.parse(readFileSync(path, 'utf8').replace(/^\uFEFF/, ''));
  } catch {
    return undefined;
  }
  const o = doc as Record<string, Record<string, unknown> | undefined>;
  if (
    o['tool']?.['name'] === 'signet' &&
    typeof o['site']?.['siteCode'] === 'string' &&
    Array.isArray(o['outputs'])
  )
    return "Signet per-site manifest (names the site's installers)";
  if (typeof o['enrollment']?.['key'] === 'string') return 'site.json with an enrollment key';
  return undefined;
}

/** What secret of a site `path` carries, or undefined. Throws only when an NSIS installer cannot be listed. */
export async function siteSecretOf(
  path: string,
  runner: Runner = defaultRunner,
): Promise<string | undefined> {
  const size = statSync(path).size;
  const fd = openSync(path, 'r');
  let pe: PeLayout | undefined;
  let nsis = false;
  try {
    const head = readAt(fd, 0, HEAD);
    if (head.subarray(0, 8).equals(CFB_MAGIC))
      return msiCarriesSiteJson(path) ? 'MSI installer carrying site.json' : undefined;
    if (head[0] === 0x7b || head[0] === 0xef || /^\s/.test(String.fromCharCode(head[0] ?? 0)))
      return jsonKind(path, size, head);
    pe = peLayout(head, fd);
    if (!pe || !overlayBytes(pe, size)) return undefined;
    nsis = readAt(fd, pe.sectionsEnd + 4, NSIS_MAGIC.length).equals(NSIS_MAGIC);
    // An incrementally assembled installer carries the site's data as Signet's own overlay record
    // (read by the PE security directory, as the installer script reads it) — and, belt and braces,
    // any overlay holding the record's magic anywhere counts too.
    if (readNsisOverlayRecord(path)) return 'NSIS installer carrying a site overlay (site.json)';
    if (overlayHolds(fd, pe, size, OVERLAY_MAGIC)) return 'PE carrying a Signet site overlay';
  } finally {
    closeSync(fd);
  }
  const listed = await sevenZipListsSiteJson(runner, path);
  if (listed === undefined && nsis)
    throw new SignetError(
      'E_PUBLISH_SITE_INSTALLER',
      `${basename(path)} is an NSIS installer that 7z cannot list; it may carry a site's site.json`,
      {
        details: { file: basename(path) },
        hint: 'Install p7zip-full (7z) so the check can run, or pass --allow-site-installers.',
      },
    );
  return listed ? `${nsis ? 'NSIS' : 'PE'} installer carrying site.json` : undefined;
}

/** Every file among `paths` that carries a site's secrets (checked two at a time). */
export async function findSiteSecrets(
  paths: readonly string[],
  runner: Runner = defaultRunner,
): Promise<SiteSecretFinding[]> {
  const found = await pLimit(2).map(paths, async (path): Promise<SiteSecretFinding | undefined> => {
    const what = await siteSecretOf(path, runner);
    return what ? { path, name: basename(path), what } : undefined;
  });
  return found.filter((f): f is SiteSecretFinding => f !== undefined);
}

/**
 * The publish preflight: refuses (E_PUBLISH_SITE_INSTALLER, exit 3) any file that carries a
 * site's secrets, listing them all; with `allow` it warns loudly instead and returns them.
 */
export async function checkSiteSecrets(
  paths: readonly string[],
  options: { allow?: boolean | undefined; runner?: Runner | undefined } = {},
): Promise<SiteSecretFinding[]> {
  const found = await findSiteSecrets(paths, options.runner ?? defaultRunner);
  if (!found.length) return found;
  const list = found.map((f) => `${f.name}: ${f.what}`).join('\n  - ');
  if (!options.allow)
    throw new SignetError(
      'E_PUBLISH_SITE_INSTALLER',
      `refusing to publish ${found.length} file(s) that carry a site's enrollment key (anyone who can read the release could enrol devices into that site):\n  - ${list}`,
      { details: { files: found.map((f) => ({ name: f.name, what: f.what })) } },
    );
  logger.warn(
    `--allow-site-installers: publishing ${found.length} file(s) that carry a site's enrollment key; everyone who can read this release can read those keys:\n  - ${list}`,
  );
  return found;
}
