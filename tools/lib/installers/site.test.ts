import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { tempDir } from '../../../test/helpers/tmp.ts';
import { SignetError } from '../errors.ts';
import { clearSecrets, redact } from '../redact.ts';
import { productConfigSchema } from './config.ts';
import { fingerprint } from './fingerprint.ts';
import { serializeSiteJson, siteJson } from './payload.ts';
import {
  assertSites,
  csvToEntries,
  detectFormat,
  loadSites,
  parseCsv,
  validateSite,
  validateSites,
} from './site.ts';

const KEY = 'canary-site-key-9f8e7d6c5b4a';
const base = { siteCode: 'ACME-HQ', serverUrl: 'https://rmm.example.com', enrollmentKey: KEY, keyVersion: 3 };

afterEach(() => clearSecrets());

describe('fingerprint', () => {
  it('is vN (XXXX) from the first two bytes of SHA-256(key)', () => {
    // sha256("abc") = ba7816bf…
    expect(fingerprint('abc', 3)).toEqual({ keyVersion: 3, hex: 'BA78', text: 'v3 (BA78)', slug: 'v3-BA78' });
    expect(fingerprint(KEY, 1).hex).toMatch(/^[0-9A-F]{4}$/);
    expect(fingerprint(KEY, 1).hex).toBe(fingerprint(KEY, 2).hex);
    expect(fingerprint(`${KEY}x`, 1).hex).not.toBe(fingerprint(KEY, 1).hex);
    expect(() => fingerprint(KEY, 0)).toThrow();
  });
});

describe('site validation', () => {
  it('accepts a full site and keeps labels verbatim', () => {
    const labels = {
      company: `Ünïcødé "Co" $x $\{y} <a&b> ]]> \\ %PATH% \n\t\u202Eevil 🦄`,
      tags: ['a;b', '', 'ç'],
    };
    const r = validateSite({ ...base, ...labels }, 'site');
    expect(r.problems).toEqual([]);
    expect(r.site).toMatchObject({ ...labels, siteCode: 'ACME-HQ', keyVersion: 3, enrollmentKey: KEY });
  });

  it('rejects bad site codes, http URLs, short keys, lone surrogates — naming the fields, never the key', () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ siteCode: '-x' }, 'site.siteCode'],
      [{ siteCode: 'a b' }, 'site.siteCode'],
      [{ siteCode: 'x'.repeat(65) }, 'site.siteCode'],
      [{ siteCode: 'a$b' }, 'site.siteCode'],
      [{ serverUrl: 'http://rmm.example.com' }, 'site.serverUrl'],
      [{ serverUrl: 'https://user:pw@rmm.example.com' }, 'site.serverUrl'],
      [{ serverUrl: 'ftp://x' }, 'site.serverUrl'],
      [{ enrollmentKey: 'short' }, 'site.enrollmentKey'],
      [{ enrollmentKey: ` ${KEY}` }, 'site.enrollmentKey'],
      [{ keyVersion: 0 }, 'site.keyVersion'],
      [{ company: 'a\uD800b' }, 'site.company'],
      [{ extra: 1 }, 'site'],
    ];
    for (const [patch, path] of cases) {
      const r = validateSite({ ...base, ...patch }, 'site');
      expect(r.site, JSON.stringify(patch)).toBeUndefined();
      expect(
        r.problems.map((p) => p.path).some((p) => p.startsWith(path)),
        JSON.stringify(r.problems),
      ).toBe(true);
      expect(JSON.stringify(r.problems)).not.toContain(KEY);
    }
  });

  it('accepts http only in the dev profile', () => {
    expect(
      validateSite({ ...base, serverUrl: 'http://127.0.0.1:8080' }, 's', { dev: true }).site,
    ).toBeDefined();
  });

  it('resolves enrollmentKeyRef from env and file and registers the key with the redactor', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'k'), `${KEY}-file\n`);
    const fromEnv = validateSite(
      { ...base, enrollmentKey: undefined, enrollmentKeyRef: 'env:SITE_KEY' },
      's',
      {
        env: { SITE_KEY: `${KEY}-env` },
      },
    );
    expect(fromEnv.site?.enrollmentKey).toBe(`${KEY}-env`);
    const fromFile = validateSite(
      { ...base, enrollmentKey: undefined, enrollmentKeyRef: `file:${join(dir, 'k')}` },
      's',
    );
    expect(fromFile.site?.enrollmentKey).toBe(`${KEY}-file`);
    expect(redact(`x ${KEY}-env y ${KEY}-file`)).toBe('x *** y ***');
    const missing = validateSite(
      { ...base, enrollmentKey: undefined, enrollmentKeyRef: 'env:NOPE_NOT_SET' },
      's',
      { env: {} },
    );
    expect(missing.problems[0]?.path).toBe('s.enrollmentKeyRef');
    const both = validateSite({ ...base, enrollmentKeyRef: 'env:X' }, 's');
    expect(both.problems[0]?.message).toMatch(/either/);
  });

  it('collects every problem of a batch and refuses case-insensitive duplicate site codes', () => {
    const r = validateSites([
      base,
      { ...base, siteCode: 'acme-hq' },
      { ...base, siteCode: 'B', serverUrl: 'nope' },
      { ...base, siteCode: 'C' },
    ]);
    expect(r.sites.map((s) => s.siteCode)).toEqual(['ACME-HQ', 'C']);
    expect(r.problems.map((p) => p.path)).toEqual(['sites[1].siteCode', 'sites[2].serverUrl']);
    expect(() => assertSites(r)).toThrow(SignetError);
    try {
      assertSites(r);
    } catch (e) {
      expect((e as SignetError).code).toBe('E_SITE_INVALID');
      expect((e as SignetError).message).toContain('sites[2].serverUrl');
      expect((e as SignetError).message).not.toContain(KEY);
    }
  });
});

describe('formats', () => {
  it('parses RFC 4180 CSV with quotes, embedded newlines, CRLF and a BOM', () => {
    expect(parseCsv('\uFEFFa,b\r\n"x ""q"", y","line1\nline2"\r\n,\n')).toEqual([
      ['a', 'b'],
      ['x "q", y', 'line1\nline2'],
      ['', ''],
    ]);
    expect(() => parseCsv('a\n"open')).toThrow(/not closed/);
  });

  it('hostile CSV: mixed line endings, commas/newlines/quotes inside fields, stray quotes refused without echoing a cell', () => {
    expect(parseCsv('a,b\nc,d\r\ne,f\rg,h\n\n\r\n')).toEqual([
      ['a', 'b'],
      ['c', 'd'],
      ['e', 'f'],
      ['g', 'h'],
    ]);
    // the first line ending decides nothing: a later bare LF still ends the row
    expect(parseCsv('a,b\r\n"x,\r\ny",z\nlast,row\n')).toEqual([
      ['a', 'b'],
      ['x,\r\ny', 'z'],
      ['last', 'row'],
    ]);
    expect(parseCsv('"\uFEFFnot a bom",""""\n')).toEqual([['\uFEFFnot a bom', '"']]);
    for (const [bad, why] of [
      [`siteCode,enrollmentKey\nA,"${KEY}"tail\n`, /line 2: text after the closing quote/],
      [`siteCode,enrollmentKey\nA,ab"${KEY}\n`, /line 2: a quote inside an unquoted field/],
      [`siteCode,enrollmentKey\nA,"${KEY}\n`, /line 2: a quoted field is not closed/],
    ] as const) {
      let err: unknown;
      try {
        csvToEntries(bad);
      } catch (e) {
        err = e;
      }
      expect((err as SignetError).code).toBe('E_INPUT_INVALID');
      expect((err as SignetError).message).toMatch(why);
      expect(JSON.stringify(err) + (err as SignetError).message).not.toContain(KEY);
    }
  });

  it('maps CSV columns (any case, snake/kebab), tags as JSON or ;-separated', () => {
    const csv = `site_code,Server-URL,company,tags,enrollment_key,keyVersion\nA1,https://x.example,"Co, ""Ltd""","[""a;b"",""c""]",${KEY},2\nA2,https://x.example,,t1;t2,${KEY}2,1\n`;
    const entries = csvToEntries(csv);
    expect(entries[0]).toMatchObject({
      siteCode: 'A1',
      company: 'Co, "Ltd"',
      tags: ['a;b', 'c'],
      keyVersion: '2',
    });
    expect(entries[1]).toMatchObject({ siteCode: 'A2', company: '', tags: ['t1', 't2'] });
    const r = validateSites(entries);
    expect(r.problems).toEqual([]);
    expect(r.sites[0]?.keyVersion).toBe(2);
    expect(() => csvToEntries('siteCode,color\nA,red\n')).toThrow(/unknown column/);
    expect(() => csvToEntries('siteCode,serverUrl\nA\n')).toThrow(/row 2/);
  });

  it('detects the format from the name or the content', () => {
    expect(detectFormat('', 'x.CSV')).toBe('csv');
    expect(detectFormat('[{}]')).toBe('json');
    expect(detectFormat('siteCode,serverUrl\n')).toBe('csv');
    expect(detectFormat('- siteCode: A\n')).toBe('yaml');
  });

  it('loads JSON ({sites}), YAML (list), a single object, CSV and stdin', async () => {
    const dir = tempDir();
    const j = join(dir, 'sites.json');
    writeFileSync(j, JSON.stringify({ sites: [base, { ...base, siteCode: 'B' }] }));
    expect((await loadSites(j)).sites.map((s) => s.siteCode)).toEqual(['ACME-HQ', 'B']);
    const y = join(dir, 'sites.yaml');
    writeFileSync(
      y,
      `- siteCode: Y1\n  serverUrl: https://y.example\n  enrollmentKey: ${KEY}\n  keyVersion: 1\n  tags: [a, "b: c"]\n`,
    );
    expect((await loadSites(y)).sites[0]).toMatchObject({ siteCode: 'Y1', tags: ['a', 'b: c'] });
    const one = join(dir, 'one.json');
    writeFileSync(one, JSON.stringify(base));
    expect((await loadSites(one)).sites).toHaveLength(1);
    const stdin = Readable.from([
      Buffer.from(`siteCode,serverUrl,enrollmentKey,keyVersion\nS1,https://s.example,${KEY},4\n`),
    ]);
    expect((await loadSites('-', { stdin })).sites[0]).toMatchObject({ siteCode: 'S1', keyVersion: 4 });
  });

  it('reports a syntax error by position only (never quoting the file, which may hold keys)', async () => {
    const dir = tempDir();
    const p = join(dir, 'bad.json');
    writeFileSync(p, `[{"siteCode":"A","enrollmentKey":"${KEY}",}]`);
    const err = await loadSites(p).catch((e: unknown) => e as SignetError);
    expect(err).toBeInstanceOf(SignetError);
    expect((err as SignetError).code).toBe('E_INPUT_INVALID');
    expect((err as SignetError).message).not.toContain(KEY);
    await expect(loadSites(join(dir, 'missing.json'))).rejects.toMatchObject({ code: 'E_FILE_NOT_FOUND' });
  });
});

describe('site.json', () => {
  it('is deterministic JSON that round-trips every label exactly', () => {
    const nasty = `"'$\${x}$\\n<>&]]>\\%VAR%\r\n\u0001\u001f\u202E\u200F🦄${'é'.repeat(10_000)}`;
    const site = validateSite({ ...base, company: nasty, siteName: nasty, tags: [nasty] }, 's').site!;
    const product = productConfigSchema.parse({});
    const a = serializeSiteJson(siteJson(site, product, '1.2.3', false));
    expect(a.equals(serializeSiteJson(siteJson(site, product, '1.2.3', false)))).toBe(true);
    const back = JSON.parse(a.toString('utf8'));
    expect(back.company).toBe(nasty);
    expect(back.tags).toEqual([nasty]);
    expect(back.enrollment).toEqual({ key: KEY, keyVersion: 3, fingerprint: fingerprint(KEY, 3).text });
    expect(a[0]).toBe(0x7b); // no BOM
  });
});
