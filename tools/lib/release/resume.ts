/**
 * Finishing an interrupted stable release: HEAD is the release commit of version X (its message
 * is exactly `git.commitMessage` for X), tag X does not exist, X is above the last stable
 * release, and every manifest in the (clean) work tree says X. Then the release is only missing
 * its tag: the re-run tags HEAD instead of answering "release commit at HEAD". A release commit
 * whose manifests do not say X is refused (E_MANIFEST_DISAGREE), never tagged.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import semver from 'semver';
import { notesPath as notesFilePath, renderNotes, resolveRepoLink } from '../changelog/index.ts';
import type { SignetConfig } from '../config/schema.ts';
import { SignetError } from '../errors.ts';
import { gitOut, remoteUrl } from '../git/git.ts';
import type { RepoPlan } from '../version/index.ts';
import { messagePattern } from '../version/release-commit.ts';

export interface Unfinished {
  tag: string;
  version: string;
  /** The notes (tag message body): the committed notes file, or rendered again. */
  body: string;
}

/** A regex for messages made from the template, capturing tag and version. */
export { messagePattern };

export async function unfinishedRelease(
  rp: RepoPlan,
  config: Pick<SignetConfig, 'changelog' | 'git' | 'version'>,
  date: string | undefined,
): Promise<Unfinished | undefined> {
  if (rp.plan.released || rp.plan.reason !== 'release commit at HEAD') return undefined;
  const message = (await gitOut(rp.root, ['log', '-1', '--format=%B', rp.head.sha])).replace(/\n+$/, '');
  const m = messagePattern(config.git.commitMessage.replace(/\n+$/, '')).exec(message);
  if (!m?.groups) return undefined;
  let version = m.groups['version'];
  let tag = m.groups['tag'];
  if (!version && tag) version = tag.slice(tag.length - (/\d+\.\d+\.\d+$/.exec(tag)?.[0].length ?? 0));
  if (!version || !semver.valid(version)) return undefined;
  tag ??= `${rp.tagPrefix}${version}`;
  // The tag form the planner makes: the prefix, or (default prefix, not set explicitly) a bare version.
  if (tag !== `${rp.tagPrefix}${version}` && !(rp.mixedTags && tag === version)) return undefined;
  if (rp.tags.some((t) => t.name === tag || t.name === `${rp.tagPrefix}${version}`)) return undefined;
  const previous = rp.plan.previousVersion;
  if (previous && !semver.gt(version, previous)) return undefined;
  const wrong = rp.manifests.filter((x) => x.version !== version);
  if (wrong.length) {
    throw new SignetError(
      'E_MANIFEST_DISAGREE',
      `HEAD is the release commit of ${tag}, not tagged, but ${wrong.map((x) => `${x.path} says ${x.version ?? 'no version'}`).join(', ')}: it is not tagged`,
      {
        hint: 'Fix the manifests in a new commit (or reset the release commit), then release again.',
        details: { tag },
      },
    );
  }
  const np = notesFilePath(config.changelog, version);
  const file = join(rp.root, np);
  let body: string;
  if (existsSync(file)) body = readFileSync(file, 'utf8');
  else {
    const when =
      date ??
      new Date(Number(await gitOut(rp.root, ['log', '-1', '--format=%ct'])) * 1000)
        .toISOString()
        .slice(0, 10);
    body = renderNotes({ version, tag, previousTag: rp.plan.previousTag }, rp.commits, {
      sections: config.changelog.sections,
      releaseRules: config.version.releaseRules,
      repo: resolveRepoLink(config.changelog, await remoteUrl(rp.root, config.git.remote)),
      date: when,
    }).body;
  }
  return { tag, version, body };
}
