/**
 * The demo's output folder is replaced on every run — but only a folder the demo made itself
 * (it carries a marker file), an empty one or a new one. Anything else is refused unless the
 * user forces it, and the folder holding the current directory is refused even then.
 */
import { existsSync, lstatSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { SignetError } from '../errors.ts';

export const DEMO_MARKER = '.signet-demo';
/** What a demo run writes at the top of its folder (older runs wrote no marker). */
const DEMO_ENTRIES = new Set([DEMO_MARKER, 'repo', 'dev-pki', 'cache', 'build', 'installers', 'release']);

function madeByDemo(entries: string[]): boolean {
  if (entries.includes(DEMO_MARKER)) return true;
  return entries.includes('dev-pki') && entries.includes('repo') && entries.every((e) => DEMO_ENTRIES.has(e));
}

/** Empties (or creates) `out` for a demo run and marks it as the demo's. */
export function prepareDemoOut(out: string, options: { force?: boolean; cwd?: string } = {}): void {
  const dir = resolve(out);
  const cwd = resolve(options.cwd ?? process.cwd());
  const rel = relative(dir, cwd);
  if (rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel)))
    throw new SignetError(
      'E_INPUT_INVALID',
      `--out ${out} holds the current directory; the demo would delete it`,
      {
        details: { field: '--out', path: dir },
        hint: 'Give --out a new folder, e.g. --out demo-out.',
      },
    );
  if (existsSync(dir)) {
    if (!lstatSync(dir).isDirectory())
      throw new SignetError('E_FS_WRONG_TYPE', `--out ${out} is not a folder`, {
        details: { field: '--out', path: dir },
        hint: `Remove ${dir} or give --out a folder.`,
      });
    const entries = readdirSync(dir);
    if (entries.length && !madeByDemo(entries) && !options.force)
      throw new SignetError(
        'E_DIR_NOT_EMPTY',
        `--out ${out} is not empty and was not made by \`signet demo\` (${entries.length} entries, e.g. ${entries.slice(0, 3).join(', ')}); nothing was deleted`,
        { details: { field: '--out', path: dir } },
      );
    for (const e of entries) rmSync(join(dir, e), { recursive: true, force: true });
  }
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, DEMO_MARKER), 'made by `signet demo`; the next run replaces this folder\n');
}
