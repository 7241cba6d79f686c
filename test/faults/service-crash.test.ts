/**
 * `signet serve` killed with SIGKILL and started again over the same data folder (SQLite WAL,
 * content-addressed blobs): during a site build, at random moments of large agent uploads, and at
 * random moments of a run of key rotations. After each restart no partial or stale installer is
 * served (the interrupted build runs again, at once — not after the dead builder's lease), every
 * blob's bytes are its name, no temporary or work file of the dead process is left (work folders
 * hold enrollment keys), no release points at a missing blob, a site is at one whole key version
 * whose installers carry that version's key, and nothing written before the kill is lost.
 */
import { createHash } from 'node:crypto';
import {
  createReadStream,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fingerprint } from '../../tools/lib/installers/fingerprint.ts';
import { verifyFile } from '../../tools/lib/sign/verify.ts';
import { makeServiceFixture, type ServiceFixture } from '../helpers/service-fixture.ts';
import {
  createTokenCli,
  filesUnder,
  HttpClient,
  installerSiteJson,
  metricValue,
  rawRequest,
  type ServeProcess,
  spawnServe,
  writeServeConfig,
} from '../helpers/service-http.ts';
import { tempDir } from '../helpers/tmp.ts';

let fx: ServiceFixture;
let proj: string;
let data: string;
let admin: string;
let serve: ServeProcess;
let http: HttpClient;
let out: string;

const trust = () => ({ caFile: fx.pki.caCert, tsaCaFile: fx.pki.caCert, leafSha256: [fx.pki.leafSha256] });
const keyOf = (site: string, v: number) => `canary-crash-${site}-v${v}-5d4c3b2a19`;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function restart(): Promise<void> {
  await serve.kill9();
  serve = await spawnServe(proj);
  http = new HttpClient(serve.base, http.contract);
}

async function allAudit(): Promise<string[]> {
  const items: string[] = [];
  let cursor: string | null = null;
  do {
    const r = await http.call({
      method: 'GET',
      path: `/v1/audit?limit=500${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`,
      token: admin,
    });
    expect(r.status).toBe(200);
    items.push(...r.json().items.map((i: unknown) => JSON.stringify(i)));
    cursor = r.json().next;
  } while (cursor);
  return items;
}

async function putSite(code: string, v: number) {
  return http.call({
    method: 'PUT',
    path: `/v1/sites/${code}`,
    token: admin,
    json: {
      serverUrl: 'https://rmm.example.com',
      company: code,
      keyVersion: v,
      enrollmentKey: keyOf(code, v),
    },
  });
}

/** Downloads the exe, checks it verifies and carries the key of `v`; returns its sha256. */
async function expectInstaller(code: string, v: number): Promise<string> {
  const r = await http.call({
    method: 'GET',
    path: `/v1/sites/${code}/installers/exe?channel=stable`,
    token: admin,
  });
  expect(r.status, `${r.text}\n${serve.output().slice(-4000)}`).toBe(200);
  expect(r.headers['x-signet-key-version']).toBe(String(v));
  const file = join(out, `${code}-${Date.now()}.exe`);
  writeFileSync(file, r.body);
  expect((await verifyFile(file, trust())).sha256).toBe(r.headers['etag']!.replace(/"/g, ''));
  expect(installerSiteJson(file, out).enrollment).toMatchObject({ key: keyOf(code, v), keyVersion: v });
  return r.headers['etag']!.replace(/"/g, '');
}

/** The blob store and the records agree, and nothing of a dead process is left behind. */
async function expectConsistentStore(): Promise<void> {
  const blobs = join(data, 'blobs');
  for (const f of filesUnder(join(blobs, 'sha256'))) {
    const name = f.split('/').slice(-2).join('');
    const sha = createHash('sha256').update(readFileSync(f)).digest('hex');
    expect(sha, `blob ${name} holds other bytes`).toBe(name);
  }
  expect(readdirSync(join(blobs, 'tmp')), 'blobs/tmp after restart').toEqual([]);
  // the only work folder is the running process's, and it is empty
  const work = readdirSync(join(data, 'work'));
  expect(
    work.filter((w) => !w.startsWith(`${hostname()}-${serve.pid}-`)),
    'work folders of dead processes',
  ).toEqual([]);
  expect(filesUnder(join(data, 'work'))).toEqual([]);
  const releases = (await http.call({ method: 'GET', path: '/v1/releases', token: admin })).json().items as {
    agentSha256: string;
    agentSize: number;
    version: string;
  }[];
  for (const r of releases) {
    const p = join(blobs, 'sha256', r.agentSha256.slice(0, 2), r.agentSha256.slice(2));
    expect(existsSync(p), `release ${r.version} points at a missing blob`).toBe(true);
    expect(statSync(p).size).toBe(r.agentSize);
  }
}

/** Waits until a build folder appears under the running process's work folder. */
async function buildStarted(timeoutMs = 20_000): Promise<boolean> {
  const t0 = Date.now();
  while (Date.now() - t0 < timeoutMs) {
    const root = join(data, 'work');
    for (const w of existsSync(root) ? readdirSync(root) : [])
      if (w.startsWith(`${hostname()}-${serve.pid}-`))
        for (const b of readdirSync(join(root, w), { withFileTypes: true }))
          if (b.name.startsWith('build-') && filesUnder(join(root, w, b.name)).length > 0) return true;
    await sleep(2);
  }
  return false;
}

describe('signet serve under kill -9', () => {
  beforeAll(async () => {
    fx = await makeServiceFixture();
    proj = join(fx.dir, 'proj');
    mkdirSync(proj);
    data = join(fx.dir, 'data');
    out = tempDir('signet-svc-crash-');
    // the default lease (30 s): a restarted service must not wait for its dead predecessor's
    writeServeConfig(fx, proj);
    admin = await createTokenCli(proj, 'crash-admin', ['admin']);
    serve = await spawnServe(proj);
    http = new HttpClient(serve.base);
    const up = await http.call({
      method: 'POST',
      path: '/v1/releases?version=1.0.0&channel=stable',
      token: admin,
      body: createReadStream(await fx.agent('1.0.0')),
    });
    expect(up.status, up.text).toBe(201);
  }, 180_000);
  afterAll(async () => {
    await serve?.kill9();
  });

  it('during a build: the restarted service removes the dead build folder, serves no partial installer and builds again at once', async () => {
    expect((await putSite('CRASH-B', 1)).status).toBe(201);
    const pending = rawRequest(serve.base, {
      method: 'GET',
      path: '/v1/sites/CRASH-B/installers/exe?channel=stable',
      token: admin,
    }).catch((e: Error) => e);
    expect(await buildStarted(), 'the build started').toBe(true);
    const auditBefore = await allAudit();
    expect(auditBefore.some((a) => a.includes('"installer.build"') && a.includes('CRASH-B'))).toBe(true);
    const deadPid = serve.pid;
    await serve.kill9();
    expect(await pending).toBeInstanceOf(Error); // the download never completed
    // the killed build left its folder (it holds the key) …
    expect(readdirSync(join(data, 'work')).some((w) => w.startsWith(`${hostname()}-${deadPid}-`))).toBe(true);
    serve = await spawnServe(proj);
    http = new HttpClient(serve.base, http.contract);
    // … which the restart removed; the download builds again, well within the dead builder's lease
    const t0 = Date.now();
    await expectInstaller('CRASH-B', 1);
    expect(Date.now() - t0, 'the interrupted build ran again at once').toBeLessThan(15_000);
    const m = (await http.call({ method: 'GET', path: '/metrics' })).text;
    expect(metricValue(m, 'signet_builds_total')).toBe(1);
    const audit = await allAudit();
    for (const a of auditBefore) expect(audit).toContain(a);
    expect(audit.filter((a) => a.includes('"installer.build"') && a.includes('CRASH-B'))).toHaveLength(2);
    await expectConsistentStore();
  }, 120_000);

  it('during large uploads (10 kills at random moments): every blob is its name, tmp is clean, no release points at a missing blob', async () => {
    const agents = [await fx.agent('1.0.0', 24), await fx.agent('1.0.0', 40)];
    // one uninterrupted upload, to know how long one takes
    const t0 = Date.now();
    const first = await http.call({
      method: 'POST',
      path: '/v1/releases?version=1.1.0&channel=stable',
      token: admin,
      body: createReadStream(agents[0]!),
    });
    expect(first.status, first.text).toBe(201);
    const span = Date.now() - t0;
    const acked = new Set(['1.1.0']);
    for (let i = 1; i <= 10; i++) {
      const version = `1.1.${i}`;
      const agent = agents[i % agents.length]!;
      const r = rawRequest(serve.base, {
        method: 'POST',
        path: `/v1/releases?version=${version}&channel=stable`,
        token: admin,
        body: createReadStream(agent, { highWaterMark: 256 * 1024 }),
      }).then(
        (a) => {
          if (a.status === 201) acked.add(version);
          return a.status;
        },
        () => 0,
      );
      await sleep(Math.floor(Math.random() * span * 1.2));
      await restart();
      await r;
      await expectConsistentStore();
      const versions = (await http.call({ method: 'GET', path: '/v1/releases', token: admin }))
        .json()
        .items.map((x: { version: string }) => x.version);
      for (const v of acked) expect(versions, `release ${v} was acknowledged before the kill`).toContain(v);
    }
    // a temporary blob file a killed process left (a write in progress) goes at the next start
    const tmpFile = join(data, 'blobs', 'tmp', `${hostname()}-999999-${Date.now()}-abcdef`);
    writeFileSync(tmpFile, 'partial');
    await restart();
    expect(existsSync(tmpFile)).toBe(false);
    await expectConsistentStore();
  }, 300_000);

  it('during key rotations (8 kills at random moments): one whole key version, installers of that version, nothing earlier lost', async () => {
    const code = 'CRASH-R';
    let version = 1;
    expect((await putSite(code, 1)).status).toBe(201);
    await expectInstaller(code, 1);
    for (let trial = 0; trial < 8; trial++) {
      const auditBefore = await allAudit();
      const sitesBefore = (await http.call({ method: 'GET', path: '/v1/sites?limit=500', token: admin }))
        .text;
      let acked = version;
      let sent = version;
      let stop = false;
      const run = (async () => {
        for (let v = version + 1; !stop && v < version + 200; v++) {
          sent = v;
          try {
            const r = await rawRequest(serve.base, {
              method: 'PUT',
              path: `/v1/sites/${code}`,
              token: admin,
              json: {
                serverUrl: 'https://rmm.example.com',
                company: code,
                keyVersion: v,
                enrollmentKey: keyOf(code, v),
              },
            });
            if (r.status !== 200) break;
            acked = v;
          } catch {
            break;
          }
        }
      })();
      await sleep(5 + Math.floor(Math.random() * 120));
      await restart();
      stop = true;
      await run;
      const s = (await http.call({ method: 'GET', path: `/v1/sites/${code}`, token: admin })).json();
      expect(s.keyVersion, `acked ${acked}, sent ${sent}`).toBeGreaterThanOrEqual(acked);
      expect(s.keyVersion).toBeLessThanOrEqual(sent);
      expect(s.fingerprint, 'the key and its version are one').toBe(
        fingerprint(keyOf(code, s.keyVersion), s.keyVersion).text,
      );
      version = s.keyVersion;
      await expectInstaller(code, version);
      const audit = await allAudit();
      for (const a of auditBefore) expect(audit, 'an audit entry written before the kill').toContain(a);
      for (const site of JSON.parse(sitesBefore).items.filter(
        (x: { siteCode: string }) => x.siteCode !== code,
      ))
        expect(
          (await http.call({ method: 'GET', path: `/v1/sites/${site.siteCode}`, token: admin })).json(),
        ).toEqual(site);
      // every acknowledged rotation is in the audit
      const rotations = audit.filter((a) => a.includes('"site.rotate"') && a.includes(code)).length;
      expect(rotations).toBeGreaterThanOrEqual(acked - 1);
      // a rotation can then continue from the version the site is at
      expect((await putSite(code, version + 1)).status).toBe(200);
      version++;
    }
    await expectConsistentStore();
  }, 300_000);
});
