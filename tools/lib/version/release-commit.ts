/**
 * Signet's own release commit: its message is `git.commitMessage` with `{tag}`/`{version}` filled
 * in. The release-commit guard recognises that subject (or a skip marker in the subject), so the
 * push of a release commit never starts another release.
 */
import type { ConventionalCommit } from './conventional.ts';

/** `git.commitMessage` when the config does not set it. */
export const DEFAULT_COMMIT_MESSAGE = 'chore(release): {tag} [skip ci]';

const escapeRegex = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** A regex for messages made from the template, capturing tag and version. */
export function messagePattern(template: string): RegExp {
  const seen = new Set<string>();
  const src = template
    .split(/(\{tag\}|\{version\})/)
    .map((part) => {
      const name = part === '{tag}' ? 'tag' : part === '{version}' ? 'version' : undefined;
      if (!name) return escapeRegex(part);
      if (seen.has(name)) return `\\k<${name}>`;
      seen.add(name);
      return name === 'tag' ? '(?<tag>\\S+)' : '(?<version>\\d+\\.\\d+\\.\\d+)';
    })
    .join('');
  return new RegExp(`^${src}$`);
}

/** The first line of a message template, trimmed like a parsed commit's header. */
export function templateSubject(template: string): string {
  const nl = template.indexOf('\n');
  return (nl < 0 ? template : template.slice(0, nl)).trim();
}

/**
 * True when HEAD is Signet's release commit or its subject asks to skip (`[skip ci]`,
 * `[skip release]`, …); a `[skip ci]` in the body does not count. With the default template any
 * `chore(release): …` subject is a release commit; with a configured `commitMessage` only a
 * subject made from it is.
 */
export function isReleaseCommit(c: ConventionalCommit, commitMessage?: string): boolean {
  if (c.skipCi) return true;
  const subject = templateSubject(commitMessage ?? DEFAULT_COMMIT_MESSAGE);
  if (subject === templateSubject(DEFAULT_COMMIT_MESSAGE)) return c.type === 'chore' && c.scope === 'release';
  return messagePattern(subject).test(c.header);
}
