/** publish: draft → streamed uploads → verify gate → publish, on GitHub, Gitea/Forgejo or a folder; re-runs converge. */

import { mask, runAction, setOutputs, startAction, writeSummary } from '../../../tools/action/action.ts';
import { publishSettings } from '../../../tools/action/settings.ts';
import { runPublish } from '../../../tools/lib/app/publish.ts';

await runAction(async () => {
  const { s, cwd, loaded } = startAction(publishSettings, ['token']);
  if (s.token) {
    mask(s.token);
    process.env['SIGNET_ACTION_TOKEN'] = s.token;
  }
  const { plan, result } = await runPublish({
    config: loaded.config,
    configPath: loaded.path,
    cwd,
    to: s.to,
    tag: s.tag,
    channel: s.channel,
    files: s.files,
    title: s.title,
    notes: s.notes,
    notesFile: s['notes-file'],
    repository: s.repository,
    apiUrl: s['api-url'],
    token: s.token ? 'env:SIGNET_ACTION_TOKEN' : s['token-ref'],
    profile: s.profile,
    allowDevSignatures: s['allow-dev-signatures'],
    allowSiteInstallers: s['allow-site-installers'],
    prune: s.prune,
    mode: s.attach ? 'attach' : 'release',
    dryRun: s['dry-run'],
  });
  setOutputs({
    url: result?.url,
    'release-id': result?.releaseId,
    tag: plan.tag,
    prerelease: plan.prerelease,
    assets: (result?.assets ?? plan.local).map((a) => ({ name: a.name, size: a.size, sha256: a.sha256 })),
  });
  const rows = result
    ? result.assets.map((a) => [a.name, String(a.size), a.sha256, a.action])
    : plan.actions.map((a) => [
        a.name,
        String(plan.local.find((l) => l.name === a.name)?.size ?? ''),
        plan.local.find((l) => l.name === a.name)?.sha256 || '(hashed while uploading)',
        a.kind,
      ]);
  await writeSummary({
    title:
      result && s.attach
        ? `Attached to ${plan.tag}`
        : result
          ? `Published ${plan.tag}${plan.prerelease ? ' (prerelease)' : ''}`
          : `Dry run: ${plan.tag}`,
    rows: [
      ['version', plan.version],
      ['forge', plan.forge],
      ['release', result?.url ?? '—'],
      ['signer', result?.signatures[0]?.subject ?? '—'],
    ],
    table: {
      header: ['asset', 'size', 'SHA-256', 'action'],
      rows,
    },
  });
});
