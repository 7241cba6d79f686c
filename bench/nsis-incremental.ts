/**
 * Incremental NSIS against a full NSIS build, with a 10 MB agent (incompressible padding), dev
 * certificate, zlib, the built-in template, the uninstaller signed at compile time through the
 * sign server in both cases.
 *
 *  - stub: makensis -DSIGNET_STUB=1 once per release (+ its one-time 7z check)
 *  - per site, incremental: assemble (copy + append) + sign + verify (+ the byte check against
 *    the stub, which replaces a 7z extraction)
 *  - per site, full: makensis (with the uninstaller's signing) + sign + verify
 *  - the floor of the incremental site: osslsigncode sign + verify run directly
 *
 *   node bench/nsis-incremental.ts [--sites 10] [--mb 10]
 */

import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultRunner } from '../tools/lib/exec/runner.ts';
import { fingerprint } from '../tools/lib/installers/fingerprint.ts';
import { NSIS_OUT, NSIS_SOURCE, renderNsis, runMakensis, SIGN_SCRIPT } from '../tools/lib/installers/nsis.ts';
import {
  assembleNsisSite,
  buildNsisStub,
  checkNsisSite,
  type NsisStubShared,
  stubTemplateValues,
} from '../tools/lib/installers/nsis-incremental.ts';
import { serializeSiteJson, siteJson } from '../tools/lib/installers/payload.ts';
import { signScriptText, startSignServer } from '../tools/lib/installers/sign-server.ts';
import { BUILTIN_TEMPLATES, loadTemplate } from '../tools/lib/installers/template.ts';
import { createSigner } from '../tools/lib/sign/index.ts';
import { arg, benchSites, installerBench, rawSignArgs, signedAgent } from './installer-setup.ts';

const SITES = arg('sites', 10);
const MB = arg('mb', 10);
const bench = await installerBench('nsis-incremental', MB);
const { data, dc, config } = bench;
const signer = createSigner(config);
const agent = await signedAgent(bench, signer);
const product = config.installers.product;
const sites = benchSites(SITES);
const signServer = await startSignServer(signer);
const template = loadTemplate(BUILTIN_TEMPLATES.nsis);
const shared: NsisStubShared = {
  agent,
  version: '1.2.3',
  product,
  installers: config.installers,
  nsis: template,
  signServer,
};

const now = () => performance.now();
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ms = (x: number) => `${x.toFixed(0)} ms`;

// ---- stub, once ------------------------------------------------------------------------------
const t = now();
mkdirSync(join(data, 'stub'));
const stub = (await buildNsisStub({ shared, work: join(data, 'stub') }))!;
const stubMs = now() - t;

// ---- per site: incremental --------------------------------------------------------------------
const inc = { assemble: [] as number[], sign: [] as number[], check: [] as number[], total: [] as number[] };
const floor: number[] = [];
for (const [i, site] of sites.entries()) {
  const bytes = serializeSiteJson(siteJson(site, product, '1.2.3', false));
  const dir = join(data, `inc-${i}`);
  mkdirSync(dir);
  const t0 = now();
  await assembleNsisSite(stub, bytes, join(dir, 'unsigned.exe'));
  const t1 = now();
  const signed = await signer.sign(join(dir, 'unsigned.exe'), { out: join(dir, 'site.exe') }); // + verify
  const t2 = now();
  await checkNsisSite(stub, signed.path, bytes);
  const t3 = now();
  inc.assemble.push(t1 - t0);
  inc.sign.push(t2 - t1);
  inc.check.push(t3 - t2);
  inc.total.push(t3 - t0);
  // the floor: the raw tool on the same file
  const f0 = now();
  const s = spawnSync('osslsigncode', rawSignArgs(dc, join(dir, 'unsigned.exe'), join(dir, 'raw.exe')));
  const v = spawnSync('osslsigncode', ['verify', '-CAfile', dc.caCert, '-in', join(dir, 'raw.exe')]);
  floor.push(now() - f0);
  if (s.status !== 0 || v.status !== 0) throw new Error('raw osslsigncode failed');
  rmSync(dir, { recursive: true, force: true });
}

// ---- per site: full makensis build -----------------------------------------------------------
const full: number[] = [];
for (const [i, site] of sites.entries()) {
  const bytes = serializeSiteJson(siteJson(site, product, '1.2.3', false));
  const work = join(data, `full-${i}`);
  mkdirSync(join(work, 'payload'), { recursive: true });
  const fp = fingerprint(site.enrollmentKey, site.keyVersion);
  const t0 = now();
  copyFileSync(agent.path, join(work, 'payload', 'agent.exe'));
  writeFileSync(join(work, 'payload', 'site.json'), bytes, { mode: 0o600 });
  const values = {
    ...stubTemplateValues(shared),
    SITE_CODE: site.siteCode,
    KEY_VERSION: String(site.keyVersion),
    FINGERPRINT_HEX: fp.hex,
  };
  writeFileSync(join(work, NSIS_SOURCE), renderNsis(template.text, values, template.path));
  writeFileSync(join(work, SIGN_SCRIPT), signScriptText(), { mode: 0o700 });
  await runMakensis({ runner: defaultRunner, workDir: work, env: signServer.env });
  await signer.sign(join(work, NSIS_OUT), { out: join(work, 'site.exe') }); // + verify
  full.push(now() - t0);
  rmSync(work, { recursive: true, force: true });
}
await signServer.close();

const incSite = median(inc.total);
const fullSite = median(full);
console.log(`NSIS, ${MB} MB agent, zlib, ${SITES} sites (medians)`);
console.log(`  stub (makensis once per release, with its 7z check):   ${ms(stubMs)}`);
console.log(
  `  incremental site: ${ms(incSite)}  (assemble ${ms(median(inc.assemble))}, sign+verify ${ms(median(inc.sign))}, byte check ${ms(median(inc.check))})`,
);
console.log(`  floor: osslsigncode sign + verify directly:            ${ms(median(floor))}`);
console.log(`  full site: makensis + sign + verify:                   ${ms(fullSite)}`);
console.log(`  incremental / full per site: ${(incSite / fullSite).toFixed(2)}×`);
console.log(`  incremental / floor per site: ${(incSite / median(floor)).toFixed(2)}×`);
const n = 100;
console.log(
  `  ${n} sites: incremental ${((stubMs + n * incSite) / 1000).toFixed(1)} s vs full ${((n * fullSite) / 1000).toFixed(1)} s (${((stubMs + n * incSite) / (n * fullSite)).toFixed(2)}×)`,
);
