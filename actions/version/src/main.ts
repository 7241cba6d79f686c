/** version: plan the next version on a channel and (by default) apply it: stable = manifests, CHANGELOG, commit, tag; beta = prerelease tag. */

import { runAction, setOutputs, startAction, writeSummary } from '../../../tools/action/action.ts';
import { versionSettings } from '../../../tools/action/settings.ts';
import { applyRelease } from '../../../tools/lib/release/apply.ts';
import { planFromRepo } from '../../../tools/lib/version/repo.ts';

await runAction(async () => {
  const {
    s,
    cwd,
    loaded: { config },
  } = startAction(versionSettings);
  const common = {
    cwd,
    channel: s.channel,
    runNumber: s['run-number'],
    tagPrefix: s['tag-prefix'],
    component: s.component,
  };
  const r = s.apply
    ? await applyRelease({ ...common, config, push: s.push })
    : {
        plan: (
          await planFromRepo({ ...common, config: config.version, commitMessage: config.git.commitMessage })
        ).plan,
      };
  const p = r.plan;
  const applied = 'files' in r ? r : undefined;
  setOutputs({
    version: p.version,
    tag: p.tag,
    released: p.released,
    prerelease: p.prerelease,
    'previous-tag': p.previousTag,
    bump: p.bump,
    components: p.components.filter((c) => c.changed).map((c) => c.name),
    commit: applied?.commit,
    'notes-file': applied?.notesPath ? `${cwd}/${applied.notesPath}` : undefined,
  });
  await writeSummary({
    title: p.released ? `Version ${p.version} (${p.channel})` : 'No release',
    rows: [
      ['version', p.version ?? '—'],
      ['tag', p.tag ?? '—'],
      ['previous tag', p.previousTag ?? '—'],
      ['bump', p.bump ?? '—'],
      ['channel', p.channel],
      ['applied', String(Boolean(s.apply && p.released))],
      ['reason', p.reason],
    ],
  });
});
