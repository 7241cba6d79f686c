/**
 * CHANGELOG.md updater: inserts a version's section at the top, under the file's heading and any
 * introduction (before the first `## ` section), leaves every other byte as it was, keeps the
 * file's line endings, and is idempotent: a version that already has a section is not added again.
 */
import { escapeRegExp } from '../git/tags.ts';

export const DEFAULT_HEADER = '# Changelog\n';

/**
 * Whether the text already has the heading Signet writes for this version: level 2, then
 * `[1.2.0](link)`, `[1.2.0]` or `1.2.0`, then nothing or ` (date)`. A `### 1.2.0 migration notes`
 * under another version, or `## 1.2.0 is coming`, is not that section.
 */
export function hasVersionSection(text: string, version: string): boolean {
  const v = escapeRegExp(version);
  return new RegExp(
    `^##[ \\t]+(?:\\[${v}\\](?:\\([^)\\r\\n]*\\))?|${v})(?:[ \\t]+\\([^)\\r\\n]*\\))?[ \\t]*\\r?$`,
    'm',
  ).test(text);
}

export interface ChangelogUpdate {
  text: string;
  changed: boolean;
}

/**
 * Returns the new changelog text. `existing` is the current file (null when it does not exist),
 * `section` the rendered notes (heading + body, "\n" line endings).
 */
export function updateChangelog(existing: string | null, section: string, version: string): ChangelogUpdate {
  const block = section.endsWith('\n') ? section : `${section}\n`;
  if (existing === null || existing === '') return { text: `${DEFAULT_HEADER}\n${block}`, changed: true };
  if (hasVersionSection(existing, version)) return { text: existing, changed: false };
  const eol = existing.includes('\r\n') ? '\r\n' : '\n';
  const insert = eol === '\n' ? block : block.replace(/\n/g, '\r\n');
  const first = /^##[ \t]/m.exec(existing);
  if (first) {
    return {
      text: `${existing.slice(0, first.index)}${insert}${eol}${existing.slice(first.index)}`,
      changed: true,
    };
  }
  const trimmedEnd = existing.endsWith(eol) ? existing : `${existing}${eol}`;
  const gap = trimmedEnd.endsWith(`${eol}${eol}`) ? '' : eol;
  return { text: `${trimmedEnd}${gap}${insert}`, changed: true };
}
