import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildTestAgent } from '../../../test/helpers/agent.ts';
import { tempDir } from '../../../test/helpers/tmp.ts';
import { testWixValues } from '../../../test/helpers/wix-values.ts';
import { defaultRunner } from '../exec/runner.ts';
import { makeDevCert } from '../sign/devcert.ts';
import { productConfigSchema } from './config.ts';
import { parseIdt, renderWix, runWixl, WIX_SOURCE } from './msi.ts';
import { decodeStreamName, encodeStreamName, MsiDatabase, readMsiFactsInProcess } from './msi-db.ts';
import { BUILTIN_TEMPLATES, loadTemplate } from './template.ts';

let dir: string;
let msi: string;

beforeAll(async () => {
  dir = tempDir();
  const work = join(dir, 'w');
  mkdirSync(join(work, 'payload'), { recursive: true });
  copyFileSync(await buildTestAgent({ version: '1.2.3' }), join(work, 'payload', 'agent.exe'));
  writeFileSync(join(work, 'payload', 'site.json'), '{"a":"é"}\n');
  writeFileSync(
    join(work, WIX_SOURCE),
    renderWix(loadTemplate(BUILTIN_TEMPLATES.wix).text, testWixValues('agentCommand'), 't.wxs'),
  );
  msi = await runWixl({ runner: defaultRunner, workDir: work, product: productConfigSchema.parse({}) });
});

async function crossCheck(path: string) {
  const db = new MsiDatabase(readFileSync(path));
  const checked: string[] = [];
  for (const t of db.tableNames) {
    if (t.startsWith('_') || t === 'Binary' || t === 'Icon') continue; // binary columns are streams
    const theirs = parseIdt((await defaultRunner.run('msiinfo', ['export', path, t], { cwd: dir })).stdout);
    const mine = db.table(t)!;
    expect(mine.columns, t).toEqual(theirs.columns);
    // the IDT header (names, types, keys) exactly as msiinfo writes it
    const theirText = (await defaultRunner.run('msiinfo', ['export', path, t], { cwd: dir })).stdout;
    expect(db.exportIdt(t)!.split('\r\n').slice(0, 3), t).toEqual(
      theirText.replace(/\r\n/g, '\n').split('\n').slice(0, 3),
    );
    const sort = (rows: Record<string, string>[]) => rows.map((r) => JSON.stringify(r)).sort();
    expect(sort(mine.rows), t).toEqual(sort(theirs.rows));
    checked.push(t);
  }
  return { db, checked };
}

describe('in-process MSI reader', () => {
  it('decodes MSI stream names', () => {
    // "_StringPool" as wixl/libmsi write it (table prefix + packed pairs)
    const enc = (s: string) => {
      const v = (c: string) => '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz._'.indexOf(c);
      let out = '\u4840';
      for (let i = 0; i < s.length; i += 2)
        out +=
          i + 1 < s.length
            ? String.fromCharCode(0x3800 + v(s[i]!) + (v(s[i + 1]!) << 6))
            : String.fromCharCode(0x4800 + v(s[i]!));
      return out;
    };
    expect(decodeStreamName(enc('_StringPool'))).toBe('\u4840_StringPool');
    expect(decodeStreamName(enc('Property'))).toBe('\u4840Property');
    expect(decodeStreamName('\u0005SummaryInformation')).toBe('\u0005SummaryInformation');
  });

  it('encodes stream names as wixl and msibuild do (every raw name of a real file, a name msibuild added)', async () => {
    const withStream = join(dir, 'named.msi');
    copyFileSync(msi, withStream);
    writeFileSync(join(dir, 'blob.bin'), 'x');
    await defaultRunner.run('msibuild', [withStream, '-a', '00odd-name.cab', join(dir, 'blob.bin')]);
    const raws = [...new MsiDatabase(readFileSync(withStream)).directory.streams.keys()];
    expect(raws.length).toBeGreaterThan(10);
    // (\u0005SummaryInformation is a Compound File name of its own, never encoded)
    for (const raw of raws.filter((r) => !r.startsWith('\u0005'))) {
      const name = decodeStreamName(raw);
      // tables: the 0x4840 prefix, then the name encoded
      const encoded = name.startsWith('\u4840')
        ? `\u4840${encodeStreamName(name.slice(1))}`
        : encodeStreamName(name);
      expect(encoded, JSON.stringify(name)).toBe(raw);
    }
    expect(raws.map(decodeStreamName)).toContain('00odd-name.cab');
    expect(encodeStreamName('00odd-name.cab').charCodeAt(0)).toBe(0x3800);
  });

  it('reads every table exactly as msiinfo exports it, and the summary Template', async () => {
    const { db, checked } = await crossCheck(msi);
    expect(checked).toEqual(
      expect.arrayContaining([
        'InstallExecuteSequence',
        'CustomAction',
        'Upgrade',
        'MsiLockPermissionsEx',
        'File',
      ]),
    );
    expect(db.summary(7)).toBe('x64;1033');
    expect(db.table('Nope')).toBeUndefined();
    // the file source (sectors read on demand) gives the same tables as the whole buffer
    const facts = readMsiFactsInProcess(msi, [
      'InstallExecuteSequence',
      'File',
      'MsiLockPermissionsEx',
      'Nope',
    ]);
    expect(facts.template).toBe('x64;1033');
    expect(Object.keys(facts.tables).sort()).toEqual([
      'File',
      'InstallExecuteSequence',
      'MsiLockPermissionsEx',
    ]);
    for (const [name, t] of Object.entries(facts.tables)) expect(t).toEqual(db.table(name));
  });

  it('reads a signed MSI (extra DigitalSignature stream) the same way', async () => {
    const dc = await makeDevCert(join(dir, 'pki'));
    const signed = join(dir, 'signed.msi');
    await defaultRunner.run('osslsigncode', [
      'sign',
      '-certs',
      dc.cert,
      '-key',
      dc.key,
      '-in',
      msi,
      '-out',
      signed,
    ]);
    const { db } = await crossCheck(signed);
    expect(db.table('Property')?.rows.find((r) => r['Property'] === 'ProductVersion')?.['Value']).toBe(
      '1.2.3',
    );
  });

  it('refuses what is not a compound file', () => {
    expect(() => new MsiDatabase(Buffer.alloc(1024))).toThrow(/not a compound file/);
  });
});
