/** changelog: the release notes of the planned (or a given) version, as an output and a file. */
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runAction, setOutputs, startAction, writeSummary } from '../../../tools/action/action.ts';
import { changelogSettings } from '../../../tools/action/settings.ts';
import { notesFromRepo } from '../../../tools/lib/release/notes.ts';

await runAction(async () => {
  const {
    s,
    cwd,
    loaded: { config },
  } = startAction(changelogSettings);
  const r = await notesFromRepo({
    cwd,
    config,
    version: s.version,
    from: s.from,
    to: s.to,
    tagPrefix: s['tag-prefix'],
  });
  if (s.write)
    (await import('../../../tools/lib/changelog/index.ts')).writeChangelog(cwd, config.changelog, r.notes);
  const file = join(
    process.env['RUNNER_TEMP'] ?? tmpdir(),
    `signet-notes-${r.notes.version.replace(/[^\w.-]/g, '_')}.md`,
  );
  writeFileSync(file, r.notes.body);
  setOutputs({
    version: r.notes.version,
    notes: r.notes.body,
    'notes-file': file,
    entries: r.notes.entries,
    range: r.range,
  });
  await writeSummary({
    title: `Changelog ${r.notes.version}`,
    rows: [
      ['range', r.range],
      ['commits', String(r.commits)],
      ['entries', String(r.notes.entries)],
    ],
    note: r.notes.body,
  });
});
