/** site-installers: per-site NSIS + MSI installers around one signed agent; enrollment keys arrive sealed. */

import { runAction, setOutputs, startAction, writeSummary } from '../../../tools/action/action.ts';
import { siteInstallersSettings } from '../../../tools/action/settings.ts';
import { buildDispatchedSites } from '../../../tools/lib/app/dispatch.ts';
import { SignetError } from '../../../tools/lib/errors.ts';

await runAction(async () => {
  const { s, cwd, loaded } = startAction(siteInstallersSettings, ['seal-private-key', 'token']);
  if (s.token) process.env['SIGNET_ACTION_TOKEN'] = s.token;
  const { result, agent, signer } = await buildDispatchedSites({
    config: loaded.config,
    configPath: loaded.path,
    cwd,
    agent: s.agent,
    agentRelease: s['agent-release'],
    forge: {
      to: s.to,
      repository: s.repository,
      apiUrl: s['api-url'],
      token: s.token ? 'env:SIGNET_ACTION_TOKEN' : undefined,
    },
    sites: s.sites,
    sealPrivateKey: s['seal-private-key'],
    outDir: s['out-dir'],
    profile: s.profile,
    version: s['product-version'],
    concurrency: s.concurrency,
  });
  const files = result.results.flatMap((x) => [x.exe, x.msi].filter((f): f is string => Boolean(f)));
  setOutputs({
    'out-dir': `${cwd}/${s['out-dir']}`.replace(/\/\.\//g, '/'),
    files,
    built: result.built,
    cached: result.cached,
    failed: result.failed,
    version: result.version,
    sites: result.results.map((x) => ({
      siteCode: x.siteCode,
      ok: x.ok,
      exe: x.exe,
      msi: x.msi,
      error: x.error?.code,
    })),
  });
  await writeSummary({
    title: `Site installers ${result.version}${signer.dev ? ' (DEV)' : ''}: ${result.built} built, ${result.cached} cached, ${result.failed} failed`,
    rows: [
      ['agent', `${agent.path} (${agent.sha256})`],
      ['signer', agent.signature.subject],
      ['profile', signer.profile],
    ],
    table: {
      header: ['site', 'result', 'exe', 'msi'],
      rows: result.results.map((x) => [
        x.siteCode,
        x.ok ? (x.cached ? 'cached' : 'built') : `${x.error?.code}: ${x.error?.message}`,
        x.exe ?? '—',
        x.msi ?? '—',
      ]),
    },
  });
  if (!result.ok)
    throw new SignetError(
      result.built + result.cached ? 'E_PARTIAL' : 'E_INSTALLER_BUILD_FAILED',
      `${result.failed} site(s) failed`,
    );
});
