/**
 * A file that changes while Signet reads it. A second process swaps (rename over the path) a
 * signed agent and a one-byte-altered copy of it every ~2 ms while `verify`, `site-installers`
 * and `publish` work on that path. Whatever each accepts must be the signed bytes: never the
 * altered file's hash in a passing report, never the altered agent inside an installer, never
 * the altered file on the release. A refusal (coded error) is a correct outcome.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openAgent } from '../../tools/lib/app/site-installers.ts';
import { type SignedArtifact, sha256File } from '../../tools/lib/artifact.ts';
import { parseConfig } from '../../tools/lib/config/load.ts';
import type { SignetConfig } from '../../tools/lib/config/schema.ts';
import { toSignetError } from '../../tools/lib/errors.ts';
import { DirForge } from '../../tools/lib/forge/dir.ts';
import { publishRelease } from '../../tools/lib/forge/publish.ts';
import { buildSiteInstallers } from '../../tools/lib/installers/build.ts';
import { validateSites } from '../../tools/lib/installers/site.ts';
import { makeDevCert } from '../../tools/lib/sign/devcert.ts';
import {
  createSigner,
  inspectSignature,
  resolveProfile,
  verifyOptionsOf,
} from '../../tools/lib/sign/index.ts';
import type { Signer } from '../../tools/lib/sign/types.ts';
import { buildTestAgent } from '../helpers/agent.ts';
import { tempDir } from '../helpers/tmp.ts';

const TRIALS = Number(process.env['SIGNET_SWAP_TRIALS'] ?? 60);
const SITE_TRIALS = Number(process.env['SIGNET_SWAP_SITE_TRIALS'] ?? 150);

let dir: string;
let config: SignetConfig;
let signer: Signer;
let signedSha = '';
let alteredSha = '';
let swapper: ChildProcess | undefined;
const target = () => join(dir, 'swap', 'agent.exe');

/** Renames the two versions over `target` in turn until killed (its own process). */
function startSwapper(): ChildProcess {
  const script = `
    const fs = require('node:fs');
    const [a, b, t] = process.argv.slice(1);
    const pause = new Int32Array(new SharedArrayBuffer(4));
    for (let i = 0; ; i++) {
      const tmp = t + '.next';
      try { fs.rmSync(tmp, { force: true }); fs.linkSync(i % 2 ? b : a, tmp); fs.renameSync(tmp, t); } catch {}
      Atomics.wait(pause, 0, 0, 1 + (i % 3));
    }`;
  return spawn(
    process.execPath,
    ['-e', script, join(dir, 'signed.exe'), join(dir, 'altered.exe'), target()],
    { stdio: 'ignore', detached: true },
  );
}

beforeAll(async () => {
  dir = tempDir('signet-swap-');
  const pki = await makeDevCert(join(dir, 'pki'));
  config = parseConfig(
    {
      signing: { defaultProfile: 'dev', profiles: { dev: pki.profile } },
      installers: {
        product: { vendor: 'Acme', product: 'Agent', serviceName: 'AcmeAgent' },
        cacheDir: join(dir, 'cache'),
        compression: 'none',
      },
    },
    'test',
  );
  signer = createSigner(config);
  copyFileSync(await buildTestAgent({ version: '1.0.0' }), join(dir, 'agent-unsigned.exe'));
  await signer.sign(join(dir, 'agent-unsigned.exe'), { out: join(dir, 'signed.exe') });
  const bytes = readFileSync(join(dir, 'signed.exe'));
  bytes[1024] = bytes[1024]! ^ 0x01; // inside the signed content: a MISMATCH for osslsigncode
  writeFileSync(join(dir, 'altered.exe'), bytes);
  signedSha = await sha256File(join(dir, 'signed.exe'));
  alteredSha = await sha256File(join(dir, 'altered.exe'));
  mkdirSync(join(dir, 'swap'));
  copyFileSync(join(dir, 'signed.exe'), target());
  swapper = startSwapper();
});

afterAll(() => {
  if (swapper?.pid) process.kill(-swapper.pid, 'SIGKILL');
});

describe('a file swapped while it is verified', () => {
  it(`verify: a passing report always carries the signed file's hash (${TRIALS} trials)`, async () => {
    const options = verifyOptionsOf(resolveProfile(config, {}));
    let passed = 0;
    let refused = 0;
    for (let i = 0; i < TRIALS; i++) {
      const r = await inspectSignature(target(), options, { profile: 'dev', dev: true });
      if (r.signed) {
        passed++;
        expect(
          r.fileSha256 === alteredSha ? 'altered' : r.fileSha256 === signedSha ? 'signed' : r.fileSha256,
          `trial ${i}: signed: true`,
        ).toBe('signed');
      } else {
        refused++;
        expect(r.error?.code).toMatch(/^E_VERIFY_/);
      }
    }
    console.log(`verify under swaps: ${passed} passed (signed bytes), ${refused} refused, of ${TRIALS}`);
    expect(passed + refused).toBe(TRIALS);
  });

  it(`site-installers: never embeds the altered agent (${SITE_TRIALS} trials)`, async () => {
    const { sites, problems } = validateSites(
      [
        {
          siteCode: 'SWAP',
          serverUrl: 'https://rmm.example.com',
          company: 'A',
          enrollmentKey: 'canary-swap-enroll-key-0123456789',
          keyVersion: 1,
        },
      ],
      {},
    );
    expect(problems).toEqual([]);
    let built = 0;
    let refused = 0;
    for (let i = 0; i < SITE_TRIALS; i++) {
      const outDir = join(dir, 'site-out');
      rmSync(outDir, { recursive: true, force: true });
      let agent: SignedArtifact;
      try {
        agent = (await openAgent(target(), signer, false)) as SignedArtifact;
      } catch (e) {
        refused++;
        expect(toSignetError(e).code).toMatch(/^E_(VERIFY|AGENT)_/);
        continue;
      }
      const r = await buildSiteInstallers({ agent, sites, config, signer, outDir, force: true }).catch(
        (e: unknown) => toSignetError(e),
      );
      const site = 'results' in r ? r.results[0]! : undefined;
      if (!site?.ok) {
        refused++;
        const code = site ? site.error?.code : (r as { code: string }).code;
        expect(code, JSON.stringify(site?.error ?? r)).toMatch(/^E_(VERIFY|AGENT|INSTALLER)_/);
        continue;
      }
      built++;
      const manifest = JSON.parse(readFileSync(site.manifest!, 'utf8'));
      expect(manifest.inputs.agent.sha256, `trial ${i}`).toBe(signedSha);
      // what ships: the agent inside the exe, extracted by an independent tool
      const x = join(dir, 'x');
      rmSync(x, { recursive: true, force: true });
      const code = await new Promise<number | null>((res) =>
        spawn('7z', ['x', '-y', `-o${x}`, site.exe!], { stdio: 'ignore' }).on('close', res),
      );
      expect(code).toBe(0);
      const inside = execFileSync('find', [x, '-name', config.installers.product.agentFileName], {
        encoding: 'utf8',
      }).trim();
      expect(inside, 'the agent inside the exe').not.toBe('');
      expect(await sha256File(inside), `trial ${i}`).toBe(signedSha);
    }
    console.log(
      `site-installers under swaps: ${built} built (signed agent), ${refused} refused, of ${SITE_TRIALS}`,
    );
    expect(built + refused).toBe(SITE_TRIALS);
  }, 600_000);

  it(`publish to dir: never publishes the altered file (${TRIALS} trials)`, async () => {
    let published = 0;
    let refused = 0;
    for (let i = 0; i < TRIALS; i++) {
      const out = join(dir, `pub-${i}`);
      try {
        await publishRelease(new DirForge(out), {
          tag: `v1.0.${i}`,
          channel: 'beta',
          files: [target()],
          verify: (p) => signer.verify(p),
        });
      } catch (e) {
        refused++;
        expect(toSignetError(e).code).toMatch(/^E_(PUBLISH_GATE|INPUT_INVALID)$/);
        continue;
      }
      published++;
      const shipped = join(out, `v1.0.${i}`, 'agent.exe');
      expect(existsSync(shipped), `trial ${i}: ${shipped}`).toBe(true);
      const sha = await sha256File(shipped);
      expect(sha === alteredSha ? 'altered' : sha === signedSha ? 'signed' : sha, `trial ${i}`).toBe(
        'signed',
      );
    }
    console.log(
      `publish under swaps: ${published} published (signed bytes), ${refused} refused, of ${TRIALS}`,
    );
    expect(published + refused).toBe(TRIALS);
  }, 300_000);
});
