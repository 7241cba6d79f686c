/**
 * Incremental NSIS installers: the expensive part (makensis compressing the agent, the uninstaller
 * signed at compile time) is built once per release as a *stub* — the installer with the signed
 * agent and the signed uninstaller and no site data, unsigned itself. Each site is then a copy of
 * the stub with the site's data appended as an overlay, then signed: the overlay lies before the
 * certificate table, inside the Authenticode-signed range (a changed byte fails the verify).
 *
 * The overlay record ends exactly where the certificate table starts (the PE security directory,
 * DataDirectory[4]; the end of the file when unsigned). It is padded in front so the file length
 * is a multiple of 8 before signing, so a signer adds no alignment padding between the record and
 * the table:
 *
 *   [0-7 zero bytes][site.json: S][meta: 128][S u32le][128 u32le][1 u32le][CRC-32 u32le]["SIGNETSJ"]
 *
 * meta: the site code (ASCII, NUL-padded to 80 bytes) and the key fingerprint "vN (XXXX)" (ASCII,
 * NUL-padded to 48), which the script writes to the uninstall registry key as a full build does.
 * The CRC-32 (IEEE) covers site.json, meta and the three u32 before it. The installer script
 * (templates/nsis/signet-overlay.nsh) reads the record by the same rules as `readNsisOverlay`,
 * and aborts with exit code 9 (writing nothing) when it is missing or damaged. Anything after the
 * certificate table is never read. NSIS's own CRC covers only its data block, which the overlay
 * does not touch, so `CRCCheck on` stays.
 */
import { createHash } from 'node:crypto';
import {
  closeSync,
  copyFileSync,
  fstatSync,
  mkdirSync,
  openSync,
  readSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import type { SignedArtifact } from '../artifact.ts';
import { SignetError } from '../errors.ts';
import { defaultRunner, type Runner } from '../exec/runner.ts';
import type { SharedPrefix } from '../exec/spawn-helper.ts';
import { packagePath, packageVersion } from '../paths.ts';
import { peLayout } from '../sign/pe-image.ts';
import { extractNsis, listFiles, sha256Of } from './checks.ts';
import type { InstallersConfig, ProductConfig } from './config.ts';
import { NSIS_OUT, NSIS_SOURCE, nsisReleaseValues, renderNsis, runMakensis, SIGN_SCRIPT } from './nsis.ts';
import { type SignServer, signScriptText } from './sign-server.ts';
import { type LoadedTemplate, VALUE_PATTERNS } from './template.ts';

export { type PeLayout, peLayout } from '../sign/pe-image.ts';

export const OVERLAY_MAGIC = Buffer.from('SIGNETSJ', 'ascii');
export const OVERLAY_FORMAT = 1;
export const OVERLAY_META_BYTES = 128;
const META_SITE_BYTES = 80;
export const OVERLAY_TRAILER_BYTES = 24;
/** The installer's exit code when its overlay is missing or damaged (nothing was written). */
export const OVERLAY_EXIT_CODE = 9;
/** The default (and the built-in template's) largest site.json an overlay may carry. */
export const DEFAULT_MAX_OVERLAY_BYTES = 128 * 1024 * 1024;
/** The script the template includes in a stub build; copied next to the rendered script. */
export const OVERLAY_INCLUDE = 'signet-overlay.nsh';
export const OVERLAY_INCLUDE_PATH = packagePath('templates', 'nsis', OVERLAY_INCLUDE);
/** The makensis symbol that selects the stub build in a template. */
export const STUB_DEFINE = 'SIGNET_STUB';
/** How many bytes of the file head the script reads to find the PE header. */
const HEAD_BYTES = 4096;

const FINGERPRINT_TEXT = /^v\d{1,9} \([0-9A-F]{4}\)$/;

export interface NsisStub {
  path: string;
  sha256: string;
  size: number;
  /** bytes reserved/allowed for the overlay (the largest site.json) */
  maxOverlayBytes: number;
  /** what the stub was built from (cache key) */
  key: string;
  /** SHA-256 of the embedded agent (checked by extraction when the stub was built). */
  agentSha256: string;
  /** The uninstaller the stub writes, as signed and verified during its build. */
  uninstaller: SignedArtifact;
}

/**
 * What a full build (build.ts) already has: its `Shared` context fits as is. Only these fields
 * reach the stub, and none of them is per site.
 */
export interface NsisStubShared {
  agent: { path: string; sha256: string };
  /** x.y.z (VIProductVersion). */
  version: string;
  product: ProductConfig;
  installers: Pick<InstallersConfig, 'compression'>;
  nsis: LoadedTemplate;
  icon?: { path: string; sha256: string } | undefined;
  /** Signs the uninstaller at compile time (and records what it signed). */
  signServer: Pick<SignServer, 'env' | 'signed'>;
  /** Part of the cache key: who signs (build.ts's signerIdentity). */
  signerIdentity?: string;
  runner?: Runner;
}

/** True when the template declares overlay support (`!define SIGNET_OVERLAY 1`). */
export function supportsOverlay(templateText: string): boolean {
  return /^[ \t]*!define[ \t]+SIGNET_OVERLAY[ \t]+1[ \t]*(;.*)?$/m.test(templateText);
}

/** The template's `!define SIGNET_OVERLAY_MAX N`, else the default. */
export function overlayMaxOf(templateText: string): number {
  const m = /^[ \t]*!define[ \t]+SIGNET_OVERLAY_MAX[ \t]+(\d{1,10})[ \t]*$/m.exec(templateText);
  const n = m ? Number(m[1]) : DEFAULT_MAX_OVERLAY_BYTES;
  if (!Number.isSafeInteger(n) || n < 2 || n > 0x7fff_0000)
    throw new SignetError('E_TEMPLATE_INVALID', `SIGNET_OVERLAY_MAX ${n} is out of range`);
  return n;
}

/** The per-site variables get neutral values a stub build never uses; the file names are fixed. */
const STUB_NEUTRAL = {
  SITE_CODE: 'overlay',
  KEY_VERSION: '0',
  FINGERPRINT_HEX: '0000',
  SIGN_SCRIPT,
  OUT_FILE: NSIS_OUT,
} as const;

/** Template values of a stub (as a full build's, with STUB_NEUTRAL for the per-site ones). */
export function stubTemplateValues(s: NsisStubShared): Record<string, string> {
  return { ...nsisReleaseValues(s), ...STUB_NEUTRAL };
}

function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * Builds the per-release stub once in `work` (a private folder): the NSIS installer with the
 * signed agent and the signed uninstaller, no site data, unsigned itself. Checked before it is
 * returned: `7z x` gives back the agent byte for byte, an uninstaller the sign server signed and
 * verified in this build, and no site.json; the file is unsigned and carries no overlay.
 * Returns undefined when the template does not declare overlay support (custom templates): the
 * caller then does a full build.
 */
export async function buildNsisStub(o: {
  shared: NsisStubShared;
  work: string;
  runner?: Runner;
  /**
   * The full build's template values, when the caller has them (build.ts's nsisValues): used
   * instead of `stubTemplateValues` for everything but the per-site variables and the file names.
   */
  values?: Record<string, string>;
}): Promise<NsisStub | undefined> {
  const s = o.shared;
  if (!supportsOverlay(s.nsis.text)) return undefined;
  const runner = o.runner ?? s.runner ?? defaultRunner;
  const maxOverlayBytes = overlayMaxOf(s.nsis.text);
  const values = { ...stubTemplateValues(s), ...o.values, ...STUB_NEUTRAL };
  const script = renderNsis(s.nsis.text, values, s.nsis.path);
  const include = await readFile(OVERLAY_INCLUDE_PATH);
  const key = sha256(
    JSON.stringify({
      format: OVERLAY_FORMAT,
      signet: packageVersion(),
      script: sha256(script),
      include: sha256(include),
      template: s.nsis.sha256,
      agent: s.agent.sha256,
      icon: s.icon?.sha256 ?? null,
      signer: s.signerIdentity ?? null,
    }),
  );

  const w = o.work;
  mkdirSync(join(w, 'payload'), { recursive: true });
  copyFileSync(s.agent.path, join(w, 'payload', 'agent.exe'));
  if (s.icon) copyFileSync(s.icon.path, join(w, 'payload', 'product.ico'));
  writeFileSync(join(w, NSIS_SOURCE), script);
  writeFileSync(join(w, OVERLAY_INCLUDE), include);
  writeFileSync(join(w, SIGN_SCRIPT), signScriptText(), { mode: 0o700 });
  await runMakensis({ runner, workDir: w, env: s.signServer.env, defines: { [STUB_DEFINE]: '1' } });
  const path = join(w, NSIS_OUT);

  // The stub is checked once here; each site is then this exact file plus its overlay.
  const x = join(w, 'x-stub');
  await extractNsis(runner, path, x);
  const files = listFiles(x);
  const named = (n: string) => files.filter((f) => f.split('/').pop()?.toLowerCase() === n.toLowerCase());
  const fail = (message: string): never => {
    throw new SignetError('E_INSTALLER_CHECK_FAILED', `NSIS stub: ${message}`);
  };
  const agents = named(s.product.agentFileName);
  if (agents.length !== 1) fail(`expected exactly one ${s.product.agentFileName}, found ${agents.length}`);
  const agentSha = sha256Of(agents[0]!);
  if (agentSha !== s.agent.sha256)
    fail(`the embedded agent (sha256 ${agentSha}) is not the signed agent (sha256 ${s.agent.sha256})`);
  if (named('site.json').length) fail('it embeds a site.json (the template does not build a stub)');
  const uninst = named('uninst.exe');
  if (uninst.length !== 1) fail(`expected exactly one uninst.exe, found ${uninst.length}`);
  const uninstallerSha = sha256Of(uninst[0]!);
  const uninstaller = s.signServer.signed.get(uninstallerSha);
  if (!uninstaller)
    fail(`the embedded uninstaller (sha256 ${uninstallerSha}) is not one the signer signed and verified`);
  rmSync(x, { recursive: true, force: true });

  const bytes = await readFile(path);
  const layout = peLayout(bytes.subarray(0, HEAD_BYTES), bytes.length);
  if (!layout) fail('not a PE file the installer script can read');
  if (layout!.certOffset !== 0) fail('it is signed (a stub must be unsigned)');
  if (parseOverlay(bytes, maxOverlayBytes)) fail('it already ends with a site record');
  const stub: NsisStub = {
    path,
    sha256: sha256(bytes),
    size: bytes.length,
    maxOverlayBytes,
    key,
    agentSha256: agentSha,
    uninstaller: uninstaller!,
  };
  stubCache.set(stub, bytes);
  return stub;
}

/** The stub's bytes, read and checked against its SHA-256 once per stub object. */
const stubCache = new WeakMap<NsisStub, Buffer>();

async function stubBytes(stub: NsisStub): Promise<Buffer> {
  let b = stubCache.get(stub);
  if (!b) {
    b = await readFile(stub.path);
    if (sha256(b) !== stub.sha256)
      throw new SignetError(
        'E_INSTALLER_CHECK_FAILED',
        `NSIS stub ${stub.path} changed since it was built (SHA-256 differs)`,
      );
    stubCache.set(stub, b);
  }
  return b;
}

export interface SiteMeta {
  siteCode: string;
  fingerprint: string;
}

/** The site code and fingerprint the script writes to the registry, taken from site.json. */
export function siteMetaOf(siteJson: Buffer): SiteMeta {
  let doc: { siteCode?: unknown; enrollment?: { fingerprint?: unknown } };
  try {
    doc = JSON.parse(siteJson.toString('utf8')) as typeof doc;
  } catch {
    throw new SignetError('E_INPUT_INVALID', 'site.json is not JSON');
  }
  const siteCode = doc?.siteCode;
  const fp = doc?.enrollment?.fingerprint;
  if (typeof siteCode !== 'string' || !VALUE_PATTERNS.identifier.test(siteCode))
    throw new SignetError('E_INPUT_INVALID', 'site.json has no valid siteCode');
  if (typeof fp !== 'string' || !FINGERPRINT_TEXT.test(fp))
    throw new SignetError('E_INPUT_INVALID', 'site.json has no valid enrollment.fingerprint');
  return { siteCode, fingerprint: fp };
}

/** The overlay record for a file of `baseLength` bytes (padding included). */
export function encodeOverlay(siteJson: Buffer, meta: SiteMeta, baseLength: number): Buffer {
  const body = siteJson.length + OVERLAY_META_BYTES + OVERLAY_TRAILER_BYTES;
  const pad = (8 - ((baseLength + body) % 8)) % 8;
  const out = Buffer.alloc(pad + body); // zero-filled: padding and the NULs of meta
  let at = pad;
  siteJson.copy(out, at);
  at += siteJson.length;
  out.write(meta.siteCode, at, META_SITE_BYTES - 1, 'latin1');
  out.write(meta.fingerprint, at + META_SITE_BYTES, OVERLAY_META_BYTES - META_SITE_BYTES - 1, 'latin1');
  at += OVERLAY_META_BYTES;
  out.writeUInt32LE(siteJson.length, at);
  out.writeUInt32LE(OVERLAY_META_BYTES, at + 4);
  out.writeUInt32LE(OVERLAY_FORMAT, at + 8);
  out.writeUInt32LE(crc32(out.subarray(pad, at + 12)), at + 12);
  OVERLAY_MAGIC.copy(out, at + 16);
  return out;
}

/**
 * Writes one site's unsigned installer to `out` (which must not exist; created mode 600, as it
 * holds the enrollment key): the stub with the site's overlay appended. A copy and an append.
 */
export async function assembleNsisSite(stub: NsisStub, siteJson: Buffer, out: string): Promise<void> {
  if (siteJson.length > stub.maxOverlayBytes)
    throw new SignetError(
      'E_TOO_LARGE',
      `site.json (${siteJson.length} bytes) is over the ${stub.maxOverlayBytes}-byte overlay limit`,
      {
        hint: 'Shorten the site labels, or raise SIGNET_OVERLAY_MAX in the NSIS template.',
        details: { size: siteJson.length, limit: stub.maxOverlayBytes },
      },
    );
  const meta = siteMetaOf(siteJson);
  const base = await stubBytes(stub);
  const record = encodeOverlay(siteJson, meta, base.length);
  let fh: Awaited<ReturnType<typeof open>>;
  try {
    fh = await open(out, 'wx', 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST')
      throw new SignetError('E_FILE_EXISTS', `${out} already exists`);
    throw e;
  }
  try {
    await fh.write(base);
    await fh.write(record);
    await fh.close();
  } catch (e) {
    await fh.close().catch(() => undefined);
    rmSync(out, { force: true });
    throw e;
  }
}

export interface OverlayRecord extends SiteMeta {
  siteJson: Buffer;
  /** File offset of the record's first byte (site.json; padding not included). */
  start: number;
  /** File offset just after the record (= the certificate table, or the end of the file). */
  end: number;
}

/** Reads a NUL-terminated ASCII field as the script's `&mN` does. */
function cField(b: Buffer): string {
  const z = b.indexOf(0);
  return b.subarray(0, z < 0 ? b.length : z).toString('latin1');
}

/** The record from its trailer and body, by the script's rules; `readAt(offset, length)`. */
function decodeRecord(
  end: number,
  maxOverlayBytes: number,
  readAt: (offset: number, length: number) => Buffer,
): OverlayRecord | undefined {
  if (end < OVERLAY_TRAILER_BYTES) return undefined;
  const t = readAt(end - OVERLAY_TRAILER_BYTES, OVERLAY_TRAILER_BYTES);
  if (t.length !== OVERLAY_TRAILER_BYTES || !t.subarray(16).equals(OVERLAY_MAGIC)) return undefined;
  const size = t.readInt32LE(0);
  if (t.readInt32LE(4) !== OVERLAY_META_BYTES || t.readInt32LE(8) !== OVERLAY_FORMAT) return undefined;
  const total = size + OVERLAY_META_BYTES + OVERLAY_TRAILER_BYTES;
  if (size < 2 || size > maxOverlayBytes || total > end) return undefined;
  const rec = readAt(end - total, total);
  if (rec.length !== total) return undefined;
  const tail = size + OVERLAY_META_BYTES;
  if (crc32(rec.subarray(0, tail + 12)) !== rec.readUInt32LE(tail + 12)) return undefined;
  if (rec.readInt32LE(tail) !== size) return undefined;
  const siteCode = cField(rec.subarray(size, size + META_SITE_BYTES));
  const fingerprint = cField(rec.subarray(size + META_SITE_BYTES, tail));
  if (!siteCode || !fingerprint) return undefined;
  return { siteJson: Buffer.from(rec.subarray(0, size)), siteCode, fingerprint, start: end - total, end };
}

/** The overlay record of a whole file in memory (signed or not), or undefined. */
export function parseOverlay(
  file: Buffer,
  maxOverlayBytes = DEFAULT_MAX_OVERLAY_BYTES,
): OverlayRecord | undefined {
  const layout = peLayout(file.subarray(0, HEAD_BYTES), file.length);
  if (!layout) return undefined;
  return decodeRecord(layout.end, maxOverlayBytes, (o, n) => file.subarray(o, o + n));
}

/** The overlay record of a file, read as the installer script reads it (head, trailer, record). */
export function readNsisOverlayRecord(
  file: string,
  maxOverlayBytes = DEFAULT_MAX_OVERLAY_BYTES,
): OverlayRecord | undefined {
  const fd = openSync(file, 'r');
  try {
    const size = fstatSync(fd).size;
    const readAt = (offset: number, length: number) => {
      const b = Buffer.alloc(Math.max(0, Math.min(length, size - offset)));
      let got = 0;
      while (got < b.length) {
        const n = readSync(fd, b, got, b.length - got, offset + got);
        if (n === 0) break;
        got += n;
      }
      return b.subarray(0, got);
    };
    const layout = peLayout(readAt(0, HEAD_BYTES), size);
    return layout ? decodeRecord(layout.end, maxOverlayBytes, readAt) : undefined;
  } finally {
    closeSync(fd);
  }
}

/**
 * Reads the site data back from a (signed or unsigned) installer exactly as the installer script
 * does (by the PE security directory), for the checks. undefined when there is none, or it is
 * damaged (the script would refuse it with exit code 9).
 */
export function readNsisOverlay(
  file: string,
  maxOverlayBytes = DEFAULT_MAX_OVERLAY_BYTES,
): Buffer | undefined {
  return readNsisOverlayRecord(file, maxOverlayBytes)?.siteJson;
}

/**
 * The per-site check that replaces extracting a site's exe: the signed file is the stub (checked
 * when it was built) byte for byte — apart from the two header fields signing sets (CheckSum and
 * the security directory) —, followed directly by this site's record (meta included) and then the
 * certificate table. Throws E_INSTALLER_CHECK_FAILED. (The signature itself is the signer's
 * verify.)
 *
 * `known`: what the file was found to start with when it was hashed (Artifact.sharedPrefix).
 * When that is the whole stub (its SHA-256 the stub's) apart from exactly those two fields, the
 * stub's bytes are not read again.
 */
export async function checkNsisSite(
  stub: NsisStub,
  file: string,
  siteJson: Buffer,
  known?: SharedPrefix,
): Promise<void> {
  const fail = (message: string): never => {
    throw new SignetError('E_INSTALLER_CHECK_FAILED', `${file}: ${message}`);
  };
  const base = await stubBytes(stub);
  const fd = openSync(file, 'r');
  try {
    // read through one reused buffer, compared piece by piece: a 10 MB file is never held
    checkBuffer ??= Buffer.allocUnsafe(CHECK_PIECE);
    const buf = checkBuffer;
    const size = fstatSync(fd).size;
    const readAt = (at: number, n: number): Buffer => {
      let done = 0;
      while (done < n) {
        const got = readSync(fd, buf, done, n - done, at + done);
        if (got <= 0) break;
        done += got;
      }
      return buf.subarray(0, done);
    };
    const layout = peLayout(Buffer.from(readAt(0, Math.min(HEAD_BYTES, size))), size);
    if (!layout) return fail('not a PE file the installer script can read');
    const expected = encodeOverlay(siteJson, siteMetaOf(siteJson), base.length);
    if (layout.end !== base.length + expected.length)
      fail('the site record does not end where the certificate table starts');
    if (layout.certOffset === 0) fail('it is not signed');
    /** The file's bytes [from, to) equal `want`'s from `want`'s offset `wantAt`. */
    const same = (from: number, to: number, want: Buffer, wantAt: number): boolean => {
      for (let at = from; at < to; ) {
        const n = Math.min(CHECK_PIECE, to - at);
        if (!readAt(at, n).equals(want.subarray(at - wantAt, at - wantAt + n))) return false;
        at += n;
      }
      return true;
    };
    // the stub, except the CheckSum and security directory that signing fills in
    const skip = [
      [layout.checksumAt, layout.checksumAt + 4],
      [layout.securityDirAt, layout.securityDirAt + 8],
    ].sort((a, b) => a[0]! - b[0]!);
    const found =
      known?.length === base.length &&
      known.sha256 === stub.sha256 &&
      JSON.stringify(known.except) === JSON.stringify(skip.map(([from, to]) => [from, to! - from!]));
    let at = 0;
    for (const [from, to] of found ? [] : [...skip, [base.length, base.length]]) {
      if (!same(at, from!, base, 0)) fail('it is not the stub of this release');
      at = to!;
    }
    if (!same(base.length, layout.end, expected, base.length))
      fail("its site record is not this site's data");
  } finally {
    closeSync(fd);
  }
}

const CHECK_PIECE = 1 << 20;
/** The buffer checkNsisSite reads through (one per process: its reads are synchronous). */
let checkBuffer: Buffer | undefined;
