/**
 * `signet site-installers` interrupted: SIGTERM to its process group in the middle of a batch
 * (right after the first site's installers appear) leaves no enrollment key in the cache folder
 * or the temp dir; and a run folder left by a killed run (or a work folder of an older version
 * in the cache) is removed by the next run.
 */
import { spawn } from 'node:child_process';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { makeDevCert } from '../../tools/lib/sign/devcert.ts';
import { buildTestAgent } from '../helpers/agent.ts';
import { tempDir } from '../helpers/tmp.ts';

const BIN = join(import.meta.dirname, '..', '..', 'tools', 'cli', 'bin.ts');
const KEY = (i: number) => `canary-sigterm-key-${String(i).padStart(2, '0')}-7e1d9c`;
const SITES = 6;

let dir: string;
let tmp: string;

function run(args: string[]): { child: ReturnType<typeof spawn>; done: Promise<number | null> } {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd: dir,
    env: { ...process.env, NO_COLOR: '1', TMPDIR: tmp },
    stdio: 'ignore',
    detached: true, // its own process group: the signal goes to Signet and every tool it runs
  });
  return { child, done: new Promise((r) => child.on('exit', (code) => r(code))) };
}

/** Every file under `root` whose bytes contain one of the canary keys. */
function filesWithKeys(root: string): string[] {
  const hits: string[] = [];
  const walk = (d: string) => {
    let entries: string[] = [];
    try {
      entries = readdirSync(d);
    } catch {
      return;
    }
    for (const n of entries) {
      const p = join(d, n);
      const st = statSync(p, { throwIfNoEntry: false });
      if (!st) continue;
      if (st.isDirectory()) walk(p);
      else if (st.isFile()) {
        const text = readFileSync(p).toString('latin1');
        if (text.includes('canary-sigterm-key-')) hits.push(p);
      }
    }
  };
  walk(root);
  return hits;
}

beforeAll(async () => {
  dir = tempDir('signet-sigterm-');
  tmp = join(dir, 'tmp');
  mkdirSync(tmp);
  const dc = await makeDevCert(join(dir, 'pki'));
  writeFileSync(
    join(dir, 'signet.config.json'),
    JSON.stringify({
      signing: { defaultProfile: 'dev', profiles: { dev: dc.profile } },
      installers: {
        product: { vendor: 'Example Vendor', product: 'Agent', serviceName: 'SignetTestAgent' },
        cacheDir: 'cache',
        compression: 'none',
        concurrency: 1,
      },
    }),
  );
  copyFileSync(await buildTestAgent({ version: '2.0.1' }), join(dir, 'agent-unsigned.exe'));
  const signed = run(['sign', 'agent-unsigned.exe', '--out', 'agent.exe']);
  expect(await signed.done).toBe(0);
  const rows = Array.from({ length: SITES }, (_, i) => `SITE${i},https://s${i}.example,C${i},${KEY(i)},1`);
  writeFileSync(
    join(dir, 'sites.csv'),
    `siteCode,serverUrl,company,enrollmentKey,keyVersion\n${rows.join('\n')}\n`,
  );
});

describe('site-installers interrupted', () => {
  it('SIGTERM mid-batch leaves no enrollment key in the cache folder or the temp dir', async () => {
    const out = join(dir, 'out');
    const r = run(['site-installers', '--agent', 'agent.exe', '--sites', 'sites.csv', '--out', out]);
    // bounded wait for the first site's manifest (its installers are in place), then signal
    const deadline = Date.now() + 60_000;
    let first = false;
    while (Date.now() < deadline && !first) {
      first = existsSync(out) && readdirSync(out).some((n) => n.endsWith('.manifest.json'));
      if (!first) await new Promise((res) => setTimeout(res, 5));
    }
    expect(first, 'the first site was built').toBe(true);
    process.kill(-r.child.pid!, 'SIGTERM');
    const code = await r.done;
    const built = readdirSync(out).filter((n) => n.endsWith('.manifest.json')).length;
    console.log(`SIGTERM after ${built} of ${SITES} sites (exit ${code})`);
    expect(built, 'the batch was interrupted before its end').toBeLessThan(SITES);
    expect(filesWithKeys(join(dir, 'cache'))).toEqual([]);
    expect(filesWithKeys(tmp)).toEqual([]);
    expect(readdirSync(tmp).filter((n) => n.startsWith('signet-'))).toEqual([]);
  });

  it('the next run removes a stale run folder and a legacy work folder in the cache', async () => {
    const legacy = join(dir, 'cache', 'work', 'SITE0-abc123', 'payload');
    mkdirSync(legacy, { recursive: true });
    writeFileSync(join(legacy, 'site.json'), JSON.stringify({ enrollmentKey: KEY(0) }));
    const stale = join(tmp, 'signet-build-stale01');
    mkdirSync(join(stale, 'SITE1-x', 'payload'), { recursive: true });
    writeFileSync(join(stale, 'owner.json'), JSON.stringify({ pid: 2 ** 22 + 12345 })); // no such process
    writeFileSync(join(stale, 'SITE1-x', 'payload', 'site.json'), JSON.stringify({ enrollmentKey: KEY(1) }));
    const r = run([
      'site-installers',
      '--agent',
      'agent.exe',
      '--sites',
      'sites.csv',
      '--out',
      join(dir, 'out2'),
    ]);
    expect(await r.done).toBe(0);
    expect(existsSync(join(dir, 'cache', 'work'))).toBe(false);
    expect(existsSync(stale)).toBe(false);
    expect(filesWithKeys(join(dir, 'cache'))).toEqual([]);
    expect(filesWithKeys(tmp)).toEqual([]);
  });
});
