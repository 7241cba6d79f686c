/**
 * Signing from a template, against the real osslsigncode: the first PE of a profile is signed by
 * osslsigncode, the next ones in-process, and every one of them passes osslsigncode verify with
 * the profile's chain, pins and timestamp policy. Also: each key form, what turns the fast path
 * off, a wrong prefix, TSAs that fail, and readers fed mutated bytes.
 */
import { createHash, createPrivateKey } from 'node:crypto';
import { appendFileSync, copyFileSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RecordingRunner } from '../../../test/helpers/canary.ts';
import { codeOf } from '../../../test/helpers/code-of.ts';
import { buildMsi, buildPe } from '../../../test/helpers/pe.ts';
import { makeTestPki, type TestPki } from '../../../test/helpers/pki.ts';
import { tempDir } from '../../../test/helpers/tmp.ts';
import { deadUrl, type LocalTsa, startTestTsa } from '../../../test/helpers/tsa.ts';
import { readCompoundDirectory } from '../cfb.ts';
import { parseConfig } from '../config/load.ts';
import { defaultRunner } from '../exec/runner.ts';
import { encodeStreamName } from '../installers/msi-db.ts';
import { clearSecrets } from '../redact.ts';
import { DIGITAL_SIGNATURE, readMsiSignature, readPeSignature } from './der.ts';
import { makeDevCert } from './devcert.ts';
import { createSigner, inspectSignature } from './index.ts';
import { msiHashOrder, msiImageDigest, msiSharedStreams } from './msi-image.ts';
import { peImageDigest, pePrefixState } from './pe-image.ts';
import { templateSigningStats } from './template-signer.ts';
import { opusInfo, readTemplate, signFromTemplate } from './template-signing.ts';
import { timestampRequest, timestampSignature, tokenOf } from './tsp.ts';

let pki: TestPki;
let tsa: LocalTsa;
let dir: string;
let agent: string;

const timestamp = () => ({ urls: [tsa.url], retries: 0, retryWaitMs: 10, timeoutMs: 5000 });

function signerOf(profile: Record<string, unknown>, env: NodeJS.ProcessEnv = process.env) {
  const runner = new RecordingRunner();
  const config = parseConfig({ signing: { defaultProfile: 'p', profiles: { p: profile } } }, 'test');
  const signer = createSigner(config, { runner, env });
  const signs = () => runner.calls.filter((c) => c.args[0] === 'sign').length;
  const verifies = () => runner.calls.filter((c) => c.args[0] === 'verify').length;
  return { signer, runner, signs, verifies };
}

function pemProfile(extra: Record<string, unknown> = {}) {
  return {
    backend: 'osslsigncode',
    cert: pki.cert,
    key: pki.key,
    timestamp: timestamp(),
    verify: { caFile: pki.caCert, tsaCaFile: pki.caCert, leafSha256: [pki.leafSha256] },
    ...extra,
  };
}

let n = 0;
function fresh(from = agent): string {
  const p = join(dir, `${++n}-agent.exe`);
  copyFileSync(from, p);
  return p;
}

beforeAll(async () => {
  dir = tempDir('signet-template-');
  pki = await makeTestPki();
  agent = await buildPe(join(dir, 'agent-src.exe'), { padBytes: 200_000 });
  tsa = await startTestTsa(pki);
});
afterAll(() => clearSecrets());

describe('template signing with osslsigncode as the judge', () => {
  it('signs the first PE with osslsigncode and the next ones in-process; each verifies, timestamped, with its own name', async () => {
    const s = signerOf(pemProfile());
    const before = tsa.requests;
    const files = Array.from({ length: 4 }, () => fresh());
    const signed = [];
    for (const [i, f] of files.entries())
      signed.push(await s.signer.sign(f, { out: `${f}.signed.exe`, description: `Agent (site ${i}) é` }));
    expect(s.signs()).toBe(1);
    // every output went through osslsigncode verify in the frame, and again here
    expect(s.verifies()).toBe(4);
    expect(tsa.requests - before).toBe(4);
    const digests = new Set<string>();
    for (const [i, a] of signed.entries()) {
      const report = await inspectSignature(a.path, { caFile: pki.caCert, tsaCaFile: pki.caCert });
      expect(report.signed).toBe(true);
      expect(report.timestamp).not.toBeNull();
      expect(report.leafSha256).toBe(pki.leafSha256);
      const sig = readPeSignature(a.path);
      expect(sig.kind).toBe('signed');
      if (sig.kind === 'signed') {
        expect(sig.pkcs7.includes(Buffer.from(`Agent (site ${i}) é`))).toBe(true);
        digests.add(createHash('sha256').update(sig.pkcs7).digest('hex'));
      }
    }
    expect(digests.size).toBe(4);
  });

  it('continues a shared prefix: a file that starts with the prefix verifies, one that does not is refused and leaves nothing', async () => {
    const s = signerOf(pemProfile({ timestamp: false }));
    const prefix = fresh();
    const site = (tail: string) => {
      const p = fresh(prefix);
      appendFileSync(p, tail); // odd lengths: the table is padded to 8 bytes
      return p;
    };
    await s.signer.sign(site('first'), { out: join(dir, 'p0.exe'), prefix });
    const ok = await s.signer.sign(site('site-0001 data'), { out: join(dir, 'p1.exe'), prefix });
    expect(ok.signature.subject).toContain('Signet DEV code signing');
    expect(s.signs()).toBe(1);
    // a file that does not start with the prefix: the signature made from the prefix's digest
    // state is not the file's, and osslsigncode verify says so
    const other = fresh();
    const b = readFileSync(other);
    b[b.length - 100] = (b[b.length - 100] ?? 0) ^ 0xff;
    writeFileSync(other, b);
    const wrongPrefix = await buildPe(join(dir, 'other.exe'));
    expect(await codeOf(s.signer.sign(other, { out: join(dir, 'p2.exe'), prefix: wrongPrefix }))).toBe(
      'E_VERIFY_FAILED',
    );
    expect(existsSync(join(dir, 'p2.exe'))).toBe(false);
    expect(readdirSync(dir).filter((f) => f.startsWith('.signet-sign-'))).toEqual([]);
  });

  it.each([
    ['an encrypted PEM key', () => ({ key: pki.encryptedKey, password: `file:${pki.passwordFile}` })],
    [
      'a PKCS#12 file',
      () => ({ cert: undefined, key: undefined, pkcs12: pki.pkcs12, password: `file:${pki.passwordFile}` }),
    ],
    [
      'a PKCS#12 in an environment variable',
      () => ({
        cert: undefined,
        key: undefined,
        pkcs12: 'env:SIGNET_TEST_P12',
        password: `file:${pki.passwordFile}`,
      }),
    ],
  ])('loads %s in-process', async (_, extra) => {
    const env = { ...process.env, SIGNET_TEST_P12: readFileSync(pki.pkcs12).toString('base64') };
    const s = signerOf(pemProfile({ ...extra(), timestamp: false }), env);
    for (let i = 0; i < 3; i++) await s.signer.sign(fresh(), { out: join(dir, `k${n}.exe`) });
    expect(s.signs()).toBe(1);
    // the key never reached a command line or an output
    const text = JSON.stringify(s.runner.calls) + s.runner.outputs.join('\n');
    expect(text).not.toContain(pki.password);
    expect(text).not.toContain('PRIVATE KEY');
  });

  it('signs RSA keys too (PKCS#1 v1.5)', async () => {
    const rsa = await makeDevCert(join(dir, 'rsa'), { keyType: 'rsa' });
    const s = signerOf({ ...rsa.profile, timestamp: false });
    for (let i = 0; i < 3; i++) await s.signer.sign(fresh(), { out: join(dir, `r${i}.exe`) });
    expect(s.signs()).toBe(1);
  });

  it('SIGNET_TEMPLATE_SIGNING=0, --nest, or a changed key file: osslsigncode signs', async () => {
    const off = signerOf(pemProfile({ timestamp: false }), { ...process.env, SIGNET_TEMPLATE_SIGNING: '0' });
    for (let i = 0; i < 3; i++) await off.signer.sign(fresh(), { out: join(dir, `o${i}.exe`) });
    expect(off.signs()).toBe(3);

    const on = signerOf(pemProfile({ timestamp: false }));
    await on.signer.sign(fresh(), { out: join(dir, 'n0.exe') });
    await on.signer.sign(join(dir, 'n0.exe'), { out: join(dir, 'n1.exe'), nest: true });
    expect(on.signs()).toBe(2);
    expect((await inspectSignature(join(dir, 'n1.exe'), { caFile: pki.caCert })).signatures).toBe(2);

    const keyCopy = join(dir, 'leaf-copy.key');
    copyFileSync(pki.key, keyCopy);
    const rot = signerOf(pemProfile({ key: keyCopy, timestamp: false }));
    await rot.signer.sign(fresh(), { out: join(dir, 'q0.exe') });
    await rot.signer.sign(fresh(), { out: join(dir, 'q1.exe') });
    expect(rot.signs()).toBe(1);
    writeFileSync(keyCopy, readFileSync(pki.key)); // rewritten in place: a new mtime
    await rot.signer.sign(fresh(), { out: join(dir, 'q2.exe') });
    await rot.signer.sign(fresh(), { out: join(dir, 'q3.exe') });
    expect(rot.signs()).toBe(2);
  });

  it('a TSA that fails on the fast path: the next TSA stamps; when all fail osslsigncode tries; when it fails too, E_TIMESTAMP_FAILED and nothing is left', async () => {
    const dead = await deadUrl();
    const s = signerOf(
      pemProfile({ timestamp: { urls: [dead, tsa.url], retries: 0, retryWaitMs: 10, timeoutMs: 5000 } }),
    );
    await s.signer.sign(fresh(), { out: join(dir, 't0.exe') });
    const a = await s.signer.sign(fresh(), { out: join(dir, 't1.exe') });
    expect(s.signs()).toBe(2); // the first file's two attempts, dead TSA then the live one
    expect(
      (await inspectSignature(a.path, { caFile: pki.caCert, tsaCaFile: pki.caCert })).timestamp,
    ).not.toBeNull();

    const dead2 = signerOf(
      pemProfile({ timestamp: { urls: [tsa.url], retries: 1, retryWaitMs: 10, timeoutMs: 5000 } }),
    );
    await dead2.signer.sign(fresh(), { out: join(dir, 't2.exe') });
    // Signet's two attempts fail: osslsigncode (its own client: proxies, system CAs) stamps the
    // file, and signs this profile's later files itself
    tsa.failNext(2, 'garbage');
    const stamped = await dead2.signer.sign(fresh(), { out: join(dir, 't3.exe') });
    expect(
      (await inspectSignature(stamped.path, { caFile: pki.caCert, tsaCaFile: pki.caCert })).timestamp,
    ).not.toBeNull();
    expect(dead2.signs()).toBe(2);
    // every attempt of both fails: E_TIMESTAMP_FAILED, nothing left
    tsa.failNext(2, 'garbage');
    const target = join(dir, 't4.exe');
    expect(await codeOf(dead2.signer.sign(fresh(), { out: target }))).toBe('E_TIMESTAMP_FAILED');
    expect(dead2.signs()).toBe(4);
    expect(existsSync(target)).toBe(false);
    expect(readdirSync(dir).filter((f) => f.startsWith('.signet-sign-'))).toEqual([]);
  });
});

describe('MSI: the signature streams added in place', () => {
  let msi: string;
  beforeAll(async () => {
    msi = await buildMsi(join(dir, 'src.msi'), agent, join(dir, 'msi-work'));
  });
  const copy = () => {
    const p = join(dir, `${++n}-package.msi`);
    copyFileSync(msi, p);
    return p;
  };

  it('signs the first MSI with osslsigncode, the next ones in-process; each verifies and reads as before', async () => {
    const s = signerOf(pemProfile());
    const outs: string[] = [];
    for (let i = 0; i < 3; i++) {
      const out = join(dir, `m${n}-${i}.msi`);
      await s.signer.sign(copy(), { out, description: `Package ${i}` });
      outs.push(out);
    }
    expect(s.signs()).toBe(1);
    for (const [i, out] of outs.entries()) {
      const report = await inspectSignature(out, { caFile: pki.caCert, tsaCaFile: pki.caCert });
      expect(report.signed).toBe(true);
      expect(report.timestamp).not.toBeNull();
      const sig = readMsiSignature(out);
      expect(sig.kind).toBe('signed');
      if (sig.kind === 'signed') expect(sig.pkcs7.includes(Buffer.from(`Package ${i}`))).toBe(true);
      // msitools reads the tables and extracts the payload of the in-place signed file
      const x = join(dir, `x-${i}`);
      await defaultRunner.run('msiextract', ['-C', x, out]);
      expect(readFileSync(join(x, 'SignetTest', 'agent.exe')).equals(readFileSync(agent))).toBe(true);
      const tables = await defaultRunner.run('msiinfo', ['tables', out]);
      expect(tables.stdout).toContain('File');
    }
    // the in-place file is the unsigned one plus what was added: every original stream unchanged
    const before = readCompoundDirectory(readFileSync(msi));
    const after = readCompoundDirectory(readFileSync(outs[2]!));
    for (const [name, read] of before.streams) expect(after.streams.get(name)?.().equals(read())).toBe(true);
    expect([...after.streams.keys()].filter((k) => !before.streams.has(k)).sort()).toEqual([
      DIGITAL_SIGNATURE,
      '\u0005MsiDigitalSignatureEx',
    ]);
  });

  it('large v3 files: a DIFAT, a FAT and a DIFAT that must grow (each signed in place, verified)', async () => {
    const s = signerOf(pemProfile({ timestamp: false }));
    await s.signer.sign(copy(), { out: join(dir, 'dfirst.msi') });
    /** An MSI (512-byte sectors: msibuild rewrites it) with a blob stream sized so that only `slack` FAT entries of `fatSectors` sectors stay free. */
    const withBlob = async (fatSectors: number, slack: number) => {
      let size = fatSectors * 64 * 1024 - 400_000;
      for (let round = 0; round < 4; round++) {
        const big = copy();
        const blob = join(dir, `blob-${n}.bin`);
        writeFileSync(blob, Buffer.alloc(size, 7));
        await defaultRunner.run('msibuild', [big, '-a', 'blob.bin', blob]);
        const st = readCompoundDirectory(readFileSync(big)).structure;
        let used = st.fat.length;
        while (used > 0 && st.fat[used - 1] === 0xffffffff) used--;
        const free = fatSectors * 128 - used;
        if (st.fatSectors.length === fatSectors && free === slack) return big;
        size += (free - slack) * 512;
      }
      throw new Error('no blob size gave the layout');
    };
    const cases = [
      { name: 'a DIFAT, room in the FAT', fat: 130, slack: 60, grows: 0 },
      { name: 'the FAT grows', fat: 130, slack: 2, grows: 1 },
      { name: 'the FAT and the DIFAT grow', fat: 109 + 127, slack: 2, grows: 1 },
    ];
    for (const c of cases) {
      const big = await withBlob(c.fat, c.slack);
      const unsigned = readCompoundDirectory(readFileSync(big));
      const out = join(dir, `d-${n}.msi`);
      await s.signer.sign(big, { out });
      const after = readCompoundDirectory(readFileSync(out));
      expect(after.structure.sectorSize, c.name).toBe(512);
      expect(after.structure.fatSectors.length, c.name).toBe(c.fat + c.grows);
      expect(after.structure.difatChain.length, c.name).toBe(Math.ceil((c.fat + c.grows - 109) / 127));
      for (const [name, read] of unsigned.streams)
        expect(after.streams.get(name)?.().equals(read())).toBe(true);
      const report = await inspectSignature(out, { caFile: pki.caCert });
      expect(report.signed, c.name).toBe(true);
    }
    expect(s.signs()).toBe(1);
  });

  it("copies of a base MSI: the digest continues from the base's state per pre-hash; a copy whose shared stream differs does not verify and leaves nothing", async () => {
    // the base: a large stream named to come first in the hash order, a small one each copy rewrites
    const base = copy();
    writeFileSync(
      join(dir, 'shared.bin'),
      createHash('sha512').update('x').digest().toString('hex').repeat(5000),
    );
    writeFileSync(join(dir, 'per-copy.bin'), Buffer.alloc(300, 1));
    await defaultRunner.run('msibuild', [
      base,
      '-a',
      '00shared.bin',
      join(dir, 'shared.bin'),
      '-a',
      'percopy.bin',
      join(dir, 'per-copy.bin'),
    ]);
    const shared = encodeStreamName('00shared.bin');
    expect(msiHashOrder(shared, '\u0005SummaryInformation')).toBeLessThan(0);
    const layoutOf = (file: string, name: string) =>
      readCompoundDirectory(readFileSync(file)).layouts.get(name)!();
    /** A copy of the base with the per-copy stream's bytes rewritten in place (and its entry's time, when `time`). */
    const copyOfBase = (fill: number, time?: boolean, sharedByte?: boolean) => {
      const p = join(dir, `${++n}-copy.msi`);
      const bytes = readFileSync(base);
      const l = layoutOf(base, encodeStreamName('percopy.bin'));
      for (const at of l.units) bytes.fill(fill, at, at + l.unit);
      if (time) bytes[l.entryOffset + 0x6c] = (bytes[l.entryOffset + 0x6c]! + 1) & 0xff;
      if (sharedByte) {
        const at = layoutOf(base, shared).units[3]!;
        bytes[at] = bytes[at]! ^ 1;
      }
      writeFileSync(p, bytes);
      return p;
    };
    const s = signerOf(pemProfile({ timestamp: false }));
    const msiBase = { path: base, unchanged: [shared] };
    const streams = msiSharedStreams(base, 'sha256', [shared])!;
    expect(streams.streams.map((x) => x.name)).toEqual([shared]);
    expect(streams.bytes).toBe(640_000);
    // the digest from the shared state is the file's own, for each pre-hash (size and time class)
    for (const [fill, time] of [
      [2, false],
      [3, false],
      [4, true],
    ] as const) {
      const c = copyOfBase(fill, time);
      const own = (await msiImageDigest(c, 'sha256'))!;
      const continued = (await msiImageDigest(c, 'sha256', streams))!;
      expect(continued.digest.equals(own.digest)).toBe(true);
      expect(continued.sharedBytes).toBe(640_000);
      expect(own.sharedBytes).toBe(0);
    }
    expect(streams.states.size).toBe(2);
    // signed: osslsigncode the first, in-process the next, each verified
    const before = templateSigningStats.sharedBytes;
    for (const [i, fill] of [5, 6, 7].entries()) {
      const out = join(dir, `cb-${n}-${i}.msi`);
      await s.signer.sign(copyOfBase(fill, i === 2), { out, msiBase });
      expect((await inspectSignature(out, { caFile: pki.caCert })).signed).toBe(true);
    }
    expect(s.signs()).toBe(1);
    expect(templateSigningStats.sharedBytes - before).toBe(2 * 640_000);
    // a copy that does not hold the shared stream as claimed: its signature does not verify
    const out = join(dir, `cb-bad-${n}.msi`);
    const bad = copyOfBase(8, false, true);
    expect(await codeOf(s.signer.sign(bad, { out, msiBase }))).toBe('E_VERIFY_FAILED');
    expect(existsSync(out)).toBe(false);
    expect(s.signs()).toBe(1);
    // such a copy as a profile's first file: osslsigncode signs its real bytes (it verifies), and
    // the template is learned from the file's own digest, so the next copies are signed in-process
    const s2 = signerOf(pemProfile({ timestamp: false }));
    await s2.signer.sign(copyOfBase(9, false, true), { out: join(dir, `cb2-${n}.msi`), msiBase });
    await s2.signer.sign(copyOfBase(10), { out: join(dir, `cb2-${n}.msi`), msiBase });
    expect(s2.signs()).toBe(1);
  });

  it("the content digest is osslsigncode's (what its verify recomputes), and an MSI signed already is left to osslsigncode", async () => {
    const s = signerOf(pemProfile({ timestamp: false }));
    const src = copy();
    const d = (await msiImageDigest(src, 'sha256'))!;
    await s.signer.sign(src, { out: join(dir, 'dg.msi') });
    const sig = readMsiSignature(join(dir, 'dg.msi'));
    expect(sig.kind === 'signed' && sig.pkcs7.includes(d.digest)).toBe(true);
    expect(await msiImageDigest(join(dir, 'dg.msi'), 'sha256')).toBeUndefined();
  });
});

describe('the readers refuse what they do not understand', () => {
  let template: Buffer;
  let digest: Buffer;
  const key = () => createPrivateKey(readFileSync(pki.key));
  beforeAll(async () => {
    const s = signerOf(pemProfile());
    const src = fresh();
    digest = peImageDigest(src, 'sha256')!.digest;
    await s.signer.sign(src, { out: join(dir, 'tpl.exe'), description: 'Agent' });
    const sig = readPeSignature(join(dir, 'tpl.exe'));
    if (sig.kind !== 'signed') throw new Error('unsigned');
    template = sig.pkcs7;
  });
  const expectOf = (o: Partial<Parameters<typeof readTemplate>[1]> = {}) => ({
    algorithm: 'sha256',
    digest,
    description: 'Agent',
    url: undefined,
    key: key(),
    ...o,
  });

  it("accepts osslsigncode's signature and reproduces it; refuses another digest, name, URL or key", async () => {
    expect('template' in readTemplate(template, expectOf())).toBe(true);
    expect(readTemplate(template, expectOf({ digest: Buffer.alloc(32) }))).toEqual({
      refused: 'osslsigncode signed another digest than Signet computed for the file',
    });
    expect('refused' in readTemplate(template, expectOf({ description: 'Agentx' }))).toBe(true);
    expect('refused' in readTemplate(template, expectOf({ url: 'https://example.com' }))).toBe(true);
    expect('refused' in readTemplate(template, expectOf({ algorithm: 'sha384' }))).toBe(true);
    const wrong = createPrivateKey(readFileSync(pki.wrong.key));
    expect(readTemplate(template, expectOf({ key: wrong }))).toEqual({
      refused: "the key is not the signer certificate's",
    });
  });

  it('a template with one byte changed is refused or reproduced exactly, never half-read (2,000 mutations)', () => {
    let accepted = 0;
    for (let i = 0; i < 2000; i++) {
      const m = Buffer.from(template);
      const at = (i * 7919) % m.length;
      m[at] = (m[at] ?? 0) ^ (1 << (i % 8));
      const r = readTemplate(m, expectOf());
      if ('template' in r) {
        accepted++;
        // only bytes Signet keeps as they were (a certificate, an algorithm identifier) can differ
        const again = signFromTemplate(r.template, { digest, description: 'Agent' }, key()).finish();
        expect(again.length).toBeGreaterThan(0);
      }
    }
    // the timestamp token and the certificates are kept as bytes: flips there pass the reader
    expect(accepted).toBeLessThan(2000);
  });

  it('truncations never throw', () => {
    for (let len = 0; len < template.length; len += 13)
      expect('refused' in readTemplate(template.subarray(0, len), expectOf())).toBe(true);
  });

  it('the program name is encoded as osslsigncode does (IA5 bytes in [0]{[1]}, URL in [1]{[0]})', () => {
    expect(opusInfo('Agent', undefined).toString('hex')).toBe('3009a00781054167656e74');
    expect(opusInfo(undefined, 'u').toString('hex')).toBe('3005a103800175');
  });

  it('TSA replies: granted with our imprint and nonce, else refused', async () => {
    const imprint = createHash('sha256').update('sig').digest();
    const nonce = Buffer.from('0102030405060708', 'hex');
    const reply = Buffer.from(
      await (
        await fetch(tsa.url, {
          method: 'POST',
          headers: { 'content-type': 'application/timestamp-query' },
          body: timestampRequest('sha256', imprint, nonce),
        })
      ).arrayBuffer(),
    );
    expect('token' in tokenOf(reply, { algorithm: 'sha256', imprint, nonce })).toBe(true);
    expect(
      tokenOf(reply, { algorithm: 'sha256', imprint, nonce: Buffer.from('0102030405060709', 'hex') }),
    ).toEqual({
      refused: 'the token does not carry our nonce',
    });
    expect(tokenOf(reply, { algorithm: 'sha256', imprint: Buffer.alloc(32), nonce })).toEqual({
      refused: 'the token stamps another signature',
    });
    for (let len = 0; len < reply.length; len += 17)
      expect('refused' in tokenOf(reply.subarray(0, len), { algorithm: 'sha256', imprint, nonce })).toBe(
        true,
      );
    const plan = { urls: [tsa.url], retries: 0, retryWaitMs: 1, timeoutMs: 5000 };
    expect((await timestampSignature(plan, 'sha256', imprint)).length).toBeGreaterThan(100);
  });

  it('the digest from a prefix state is the digest of the whole file', () => {
    const src = fresh();
    appendFileSync(src, 'xyz');
    const whole = peImageDigest(src, 'sha256')!;
    const prefix = pePrefixState(src, 'sha256', 150_001)!;
    expect(prefix.length).toBe(150_000);
    const continued = peImageDigest(src, 'sha256', prefix)!;
    expect(continued.digest.equals(whole.digest)).toBe(true);
    expect(continued.words).toBe(whole.words);
    expect(whole.tableAt % 8).toBe(0);
  });
});
