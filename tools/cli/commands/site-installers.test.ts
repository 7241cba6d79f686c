/** `signet site-installers` end to end through the real CLI process (real tools, dev certificate). */
import { execFile } from 'node:child_process';
import { copyFileSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildTestAgent } from '../../../test/helpers/agent.ts';
import { tempDir } from '../../../test/helpers/tmp.ts';
import { fingerprint } from '../../lib/installers/fingerprint.ts';
import { makeDevCert } from '../../lib/sign/devcert.ts';

const BIN = join(import.meta.dirname, '..', 'bin.ts');
const KEY1 = 'canary-cli-key-1-abcdef012345';
const KEY2 = 'canary-cli-key-2-543210fedcba';
const KEY3 = 'canary-cli-key-3-flag-0011223344';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

function signet(cwd: string, args: string[], env: Record<string, string> = {}, input?: string): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [BIN, ...args],
      { cwd, env: { ...process.env, NO_COLOR: '1', ...env } },
      (err, stdout, stderr) => {
        resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
      },
    );
    child.stdin?.end(input ?? '');
  });
}

function expectNoKeys(...texts: string[]) {
  for (const t of texts) for (const k of [KEY1, KEY2, KEY3]) expect(t).not.toContain(k);
}

let dir: string;

beforeAll(async () => {
  dir = tempDir('signet-cli-inst-');
  const dc = await makeDevCert(join(dir, 'pki'));
  writeFileSync(
    join(dir, 'signet.config.json'),
    JSON.stringify({
      signing: { defaultProfile: 'dev', profiles: { dev: dc.profile } },
      installers: { product: { vendor: 'Example Vendor', product: 'Agent', serviceName: 'SignetTestAgent' } },
    }),
  );
  copyFileSync(await buildTestAgent({ version: '2.0.1' }), join(dir, 'agent-unsigned.exe'));
  const r = await signet(dir, ['sign', 'agent-unsigned.exe', '--out', 'agent.exe']);
  expect(r.code, r.stderr).toBe(0);
});

describe('signet site-installers', () => {
  it('builds a CSV batch, reports the invalid site, exits 5 (partial), never prints a key', async () => {
    writeFileSync(
      join(dir, 'sites.csv'),
      `siteCode,serverUrl,company,tags,enrollmentKey,keyVersion\nACME-HQ,https://a.example,"ACME ""Q"" $x",a;b,${KEY1},3\nBETA,https://b.example,Beta,,${KEY2},1\nbad code,https://c.example,C,,${KEY2}x,1\n`,
    );
    const r = await signet(dir, [
      'site-installers',
      '--agent',
      'agent.exe',
      '--sites',
      'sites.csv',
      '--out',
      'out',
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(5);
    const j = JSON.parse(r.stdout);
    expect(j.summary).toEqual({ total: 3, built: 2, cached: 0, failed: 1 });
    expect(j.version).toBe('2.0.1');
    expect(j.sites.map((s: { ok: boolean }) => s.ok)).toEqual([true, true, false]);
    expect(j.sites[2].error.code).toBe('E_SITE_INVALID');
    expect(j.sites[0].fingerprint).toBe(fingerprint(KEY1, 3).text);
    expect(readdirSync(join(dir, 'out')).sort()).toEqual(
      [
        'ACME-HQ.manifest.json',
        `Agent-ACME-HQ-v3-${fingerprint(KEY1, 3).hex}.exe`,
        `Agent-ACME-HQ-v3-${fingerprint(KEY1, 3).hex}.msi`,
        'BETA.manifest.json',
        `Agent-BETA-v1-${fingerprint(KEY2, 1).hex}.exe`,
        `Agent-BETA-v1-${fingerprint(KEY2, 1).hex}.msi`,
        'site-installers.result.json',
      ].sort(),
    );
    for (const f of readdirSync(join(dir, 'out')).filter((n) => n.endsWith('.json')))
      expectNoKeys(readFileSync(join(dir, 'out', f), 'utf8'));
    expectNoKeys(r.stdout, r.stderr);

    // re-run: everything cached; human output names each site
    const again = await signet(dir, [
      'site-installers',
      '--agent',
      'agent.exe',
      '--sites',
      'sites.csv',
      '--out',
      'out',
    ]);
    expect(again.code).toBe(5);
    expect(again.stdout).toMatch(/✓ ACME-HQ {2}v3 \([0-9A-F]{4}\) .*\(cached\)/);
    expect(again.stdout).toMatch(/0 built, 2 cached, 1 failed/);
    expectNoKeys(again.stdout, again.stderr);
  });

  it('counts sites, not problems: an invalid site is one entry with all its problems, file and --json agree', async () => {
    writeFileSync(
      join(dir, 'mixed.json'),
      JSON.stringify([
        { siteCode: 'GOOD-1', serverUrl: 'https://g.example', enrollmentKey: KEY1, keyVersion: 2 },
        { siteCode: 'BAD-2', serverUrl: 'not a url', enrollmentKey: KEY2, keyVersion: 0 },
        { siteCode: 'bad code', enrollmentKey: KEY3, keyVersion: 1 },
      ]),
    );
    const r = await signet(dir, [
      'site-installers',
      '--agent',
      'agent.exe',
      '--sites',
      'mixed.json',
      '--out',
      'out-mixed',
      '--json',
    ]);
    expect(r.code, r.stderr).toBe(5);
    const j = JSON.parse(r.stdout);
    expect(j.ok).toBe(false);
    expect(j.summary).toEqual({ total: 3, built: 1, cached: 0, failed: 2 });
    expect(
      j.sites.map((s: { index: number; siteCode: string; ok: boolean }) => [s.index, s.siteCode, s.ok]),
    ).toEqual([
      [0, 'GOOD-1', true],
      [1, 'BAD-2', false],
      [2, 'sites[2]', false],
    ]);
    expect(j.sites[1].error.code).toBe('E_SITE_INVALID');
    expect(j.sites[1].problems.map((p: { path: string }) => p.path).sort()).toEqual([
      'sites[1].keyVersion',
      'sites[1].serverUrl',
    ]);
    expect(j.sites[2].problems.map((p: { path: string }) => p.path).sort()).toEqual([
      'sites[2].serverUrl',
      'sites[2].siteCode',
    ]);
    expect(j.sites[0].exe).toBe(`Agent-GOOD-1-v2-${fingerprint(KEY1, 2).hex}.exe`);
    // the result file is the very report --json printed
    const file = JSON.parse(readFileSync(join(dir, 'out-mixed', 'site-installers.result.json'), 'utf8'));
    expect(file).toEqual(j);
    expectNoKeys(r.stdout, r.stderr, JSON.stringify(file));

    // the human form names each site once, with its problems
    const human = await signet(dir, [
      'site-installers',
      '--agent',
      'agent.exe',
      '--sites',
      'mixed.json',
      '--out',
      'out-mixed',
    ]);
    expect(human.code).toBe(5);
    expect(human.stdout.match(/^✗ /gm)).toHaveLength(2);
    expect(human.stdout).toMatch(/✗ BAD-2 {2}\[E_SITE_INVALID\] sites\[1\]/);
    expect(human.stdout).toMatch(/0 built, 1 cached, 2 failed/);
  });

  it('all sites invalid: E_SITE_INVALID (2) with one entry per site', async () => {
    writeFileSync(
      join(dir, 'bad.json'),
      JSON.stringify([{ siteCode: 'ONLY-BAD', serverUrl: 'nope', enrollmentKey: KEY1, keyVersion: 0 }]),
    );
    const r = await signet(dir, ['site-installers', '--agent', 'agent.exe', '--sites', 'bad.json', '--json']);
    expect(r.code).toBe(2);
    const e = JSON.parse(r.stdout).error;
    expect(e.code).toBe('E_SITE_INVALID');
    expect(e.details.sites).toHaveLength(1);
    expect(e.details.sites[0]).toMatchObject({ index: 0, siteCode: 'ONLY-BAD' });
    expect(e.details.sites[0].problems).toHaveLength(2);
    expectNoKeys(r.stdout, r.stderr);
  });

  it('builds one site from flags (key from env) and from stdin', async () => {
    const r = await signet(
      dir,
      [
        'site-installers',
        '--agent',
        'agent.exe',
        '--site-code',
        'FLAG-1',
        '--server-url',
        'https://f.example',
        '--company',
        'Flag & Co',
        '--tag',
        'x',
        '--tag',
        'y',
        '--enrollment-key',
        'env:SITE_KEY',
        '--key-version',
        '7',
        '--out',
        'out-flags',
        '--json',
      ],
      { SITE_KEY: KEY3 },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).sites[0]).toMatchObject({
      siteCode: 'FLAG-1',
      ok: true,
      fingerprint: fingerprint(KEY3, 7).text,
    });
    expectNoKeys(r.stdout, r.stderr);

    const s = await signet(
      dir,
      ['site-installers', '--agent', 'agent.exe', '--sites=-', '--out', 'out-stdin', '--json'],
      {},
      JSON.stringify([
        { siteCode: 'IN-1', serverUrl: 'https://i.example', enrollmentKey: KEY1, keyVersion: 1 },
      ]),
    );
    expect(s.code, s.stderr).toBe(0);
    expect(JSON.parse(s.stdout).summary.built).toBe(1);
    expectNoKeys(s.stdout, s.stderr);
  });

  it('refuses a literal key on argv (2) and an unsigned agent (3)', async () => {
    const lit = await signet(dir, [
      'site-installers',
      '--agent',
      'agent.exe',
      '--site-code',
      'L',
      '--server-url',
      'https://l.example',
      '--enrollment-key',
      KEY3,
      '--key-version',
      '1',
    ]);
    expect(lit.code).toBe(2);
    expect(lit.stderr).toContain('E_SECRET_ON_ARGV');
    expectNoKeys(lit.stdout, lit.stderr);

    const uns = await signet(dir, [
      'site-installers',
      '--agent',
      'agent-unsigned.exe',
      '--sites',
      'sites.csv',
      '--out',
      'out-u',
    ]);
    expect(uns.code).toBe(3);
    expect(uns.stderr).toContain('E_AGENT_UNSIGNED');
    expectNoKeys(uns.stdout, uns.stderr);
  });
});
