/**
 * Per-site installer speed with a 10 MB agent (incompressible padding), dev certificate, zlib.
 *
 *  1. One site (exe + msi, both signed and verified, uninstaller signed, sign-once invariant and
 *     site.json checked by extraction, MSI lint, manifest) against the floor: makensis + wixl +
 *     osslsigncode sign/verify of both outputs, run directly one after the other. Goal ≤ 1.25×.
 *  2. N sites (default 100) in one batch on every core against N single-site builds in
 *     sequence. Goal ≤ 0.6×.
 *  3. The same batch again, fully cached. Goal < 1 s.
 *
 *   node bench/installers.ts [--sites 100] [--mb 10] [--rounds 3]
 */

import { copyFileSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { defaultRunner } from '../tools/lib/exec/runner.ts';
import { buildSiteInstallers, deriveUpgradeCode } from '../tools/lib/installers/build.ts';
import { configGuardEncoded } from '../tools/lib/installers/config-guard.ts';
import { fingerprint } from '../tools/lib/installers/fingerprint.ts';
import { renderWix, WIX_VARIABLES } from '../tools/lib/installers/msi.ts';
import { compressionDirective, NSIS_VARIABLES } from '../tools/lib/installers/nsis.ts';
import { serializeSiteJson, siteJson } from '../tools/lib/installers/payload.ts';
import type { SiteConfig } from '../tools/lib/installers/site.ts';
import { BUILTIN_TEMPLATES, loadTemplate, renderTemplate } from '../tools/lib/installers/template.ts';
import { createSigner } from '../tools/lib/sign/index.ts';
import { arg, benchSites, installerBench, rawSignArgs, signedAgent } from './installer-setup.ts';

const SITES = arg('sites', 100);
const MB = arg('mb', 10);
const ROUNDS = arg('rounds', 3);
const bench = await installerBench('installers', MB);
const { data, dc, config } = bench;
const signer = createSigner(config);
const agent = await signedAgent(bench, signer);
const sites: SiteConfig[] = benchSites(SITES);
const product = config.installers.product;

/** CPU seconds of this process and its waited-for children (/proc/self/stat: utime stime cutime cstime). */
function cpuSeconds(): number {
  const fields = readFileSync('/proc/self/stat', 'utf8').split(') ')[1]!.split(' ');
  const ticks = [11, 12, 13, 14].reduce((sum, i) => sum + Number(fields[i]), 0);
  return ticks / 100;
}
let lastCpu = 0;
const time = async (fn: () => Promise<unknown>) => {
  const c = cpuSeconds();
  const t = performance.now();
  await fn();
  lastCpu = cpuSeconds() - c;
  return (performance.now() - t) / 1000;
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

// ---- floor: the raw tools, one after the other ------------------------------------------------
async function floorOnce(round: number): Promise<number> {
  const work = join(data, `floor-${round}`);
  mkdirSync(join(work, 'payload'), { recursive: true });
  copyFileSync(agent.path, join(work, 'payload', 'agent.exe'));
  const site = sites[0]!;
  writeFileSync(
    join(work, 'payload', 'site.json'),
    serializeSiteJson(siteJson(site, product, '1.2.3', true)),
  );
  const fp = fingerprint(site.enrollmentKey, site.keyVersion);
  // the same script without the uninstaller signing hook (the raw floor has no signer to call)
  const nsi = renderTemplate(
    loadTemplate(BUILTIN_TEMPLATES.nsis).text.replace(/^!uninstfinalize.*$/m, ''),
    {
      COMPRESSION: compressionDirective('zlib'),
      VENDOR: product.vendor,
      PRODUCT: product.product,
      SERVICE_NAME: product.serviceName,
      AGENT_FILE: product.agentFileName,
      VERSION: '1.2.3',
      VERSION4: '1.2.3.0',
      SITE_CODE: site.siteCode,
      KEY_VERSION: '1',
      FINGERPRINT_HEX: fp.hex,
      OUT_FILE: 'installer.exe',
      ICON: '',
      INSTALL_ARGS: 'install',
      UNINSTALL_ARGS: 'uninstall',
      REMOVE_CONFIG: '1',
    },
    Object.fromEntries(Object.entries(NSIS_VARIABLES).filter(([k]) => k !== 'SIGN_SCRIPT')),
    'floor.nsi',
  );
  writeFileSync(join(work, 'installer.nsi'), nsi);
  writeFileSync(
    join(work, 'installer.wxs'),
    renderWix(
      loadTemplate(BUILTIN_TEMPLATES.wix).text,
      {
        PRODUCT_CODE: '1B5E1C1A-2222-4333-8444-555566667777',
        UPGRADE_CODE: deriveUpgradeCode(product.vendor, product.product),
        VENDOR: product.vendor,
        PRODUCT: product.product,
        SERVICE_NAME: product.serviceName,
        AGENT_FILE: product.agentFileName,
        VERSION: '1.2.3',
        SITE_CODE: site.siteCode,
        KEY_VERSION: '1',
        FINGERPRINT_HEX: fp.hex,
        ICON_XML: '',
        MSI_SERVICE_MODE: product.msiService,
        SERVICE_ARGS: 'run',
        INSTALL_ARGS: 'install',
        UNINSTALL_ARGS: 'uninstall',
        CONFIG_CHECK_SCRIPT_B64: configGuardEncoded(product),
      },
      'floor.wxs',
    ),
  );
  void WIX_VARIABLES;
  const r = (file: string, args: string[]) => defaultRunner.run(file, args, { cwd: work });
  const sign = (i: string, o: string) => r('osslsigncode', rawSignArgs(dc, i, o, 'Agent'));
  const verify = (f: string) => r('osslsigncode', ['verify', '-CAfile', dc.caCert, '-in', f]);
  return time(async () => {
    await r('makensis', ['-V2', '-INPUTCHARSET', 'UTF8', 'installer.nsi']);
    await r('wixl', ['-a', 'x64', '-o', 'installer.msi', 'installer.wxs']);
    await sign('installer.exe', 'signed.exe');
    await verify('signed.exe');
    await sign('installer.msi', 'signed.msi');
    await verify('signed.msi');
  });
}

const floor: number[] = [];
const ours: number[] = [];
const floorCpu: number[] = [];
const oursCpu: number[] = [];
for (let i = 0; i < ROUNDS; i++) {
  floor.push(await floorOnce(i));
  floorCpu.push(lastCpu);
  ours.push(
    await time(() =>
      buildSiteInstallers({
        agent,
        sites: [sites[0]!],
        config,
        signer,
        outDir: join(data, `one-${i}`),
        force: true,
      }),
    ),
  );
  oursCpu.push(lastCpu);
}
const f1 = median(floor);
const o1 = median(ours);
console.log(`agent ${MB} MB, zlib, ${availableParallelism()} cores, median of ${ROUNDS}`);
console.log(`one site   floor (makensis + wixl + 2× osslsigncode sign/verify): ${f1.toFixed(2)} s`);
console.log(
  `one site   signet (+ uninstaller signing, msibuild, lint, 7z/msiextract checks, manifest): ${o1.toFixed(2)} s`,
);
console.log(`RATIO one-site overhead: ${(o1 / f1).toFixed(2)}x   (goal ≤ 1.25x)`);
console.log(
  `one site   CPU seconds (all processes): floor ${median(floorCpu).toFixed(2)}, signet ${median(oursCpu).toFixed(2)} → ${(median(oursCpu) / median(floorCpu)).toFixed(2)}x   (load-independent)`,
);
const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
console.log(`load average during the run: ${load}`);

// ---- batch vs sequence ------------------------------------------------------------------------
const seq = await time(async () => {
  for (const [i, s] of sites.entries()) {
    await buildSiteInstallers({
      agent,
      sites: [s],
      config,
      signer,
      outDir: join(data, 'seq'),
      concurrency: 1,
    });
    if (i % 10 === 9) process.stderr.write(`  sequence ${i + 1}/${SITES}\r`);
  }
});
rmSync(join(data, 'seq'), { recursive: true, force: true });
const batch = await time(() =>
  buildSiteInstallers({ agent, sites, config, signer, outDir: join(data, 'batch') }),
);
console.log(
  `${SITES} sites one by one: ${seq.toFixed(1)} s; one batch on ${availableParallelism()} cores: ${batch.toFixed(1)} s`,
);
console.log(`RATIO batch / sequence: ${(batch / seq).toFixed(2)}x   (goal ≤ 0.6x)`);

const cached = await time(async () => {
  const r = await buildSiteInstallers({ agent, sites, config, signer, outDir: join(data, 'batch') });
  if (r.cached !== SITES) throw new Error(`expected ${SITES} cached, got ${r.cached}`);
});
console.log(`RATIO cached re-run of ${SITES} sites: ${cached.toFixed(2)} s   (goal < 1 s)`);
rmSync(data, { recursive: true, force: true });
