/**
 * Replays the kinds of release histories real repositories have (placeholders, package.json
 * without a version, stale lock files, mixed `v`/bare tags, prereleases in range, `[skip ci]` in a
 * squash body) and counts how many planning runs give the version that was actually released.
 * Each history is built as a real git repository; after every release commit the planner runs on
 * HEAD and must give the expected tag. `node bench/replay.ts` prints the counts.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TestRepo } from '../test/helpers/git-repo.ts';
import { planFromRepo } from '../tools/lib/version/repo.ts';

export interface Step {
  commit: string;
  files?: Record<string, string>;
  /** The tag this commit was released as (the planner must give it). */
  release?: string;
  /** Other tags put on the commit (prereleases, bare duplicates). */
  tags?: string[];
}

export interface History {
  name: string;
  files: Record<string, string>;
  steps: Step[];
}

const pkg = (v?: string) => `${JSON.stringify({ name: 'x', ...(v ? { version: v } : {}) }, null, 2)}\n`;
const lock = (v: string) =>
  `${JSON.stringify({ name: 'x', version: v, lockfileVersion: 3, packages: { '': { name: 'x', version: v } } }, null, 2)}\n`;

export const HISTORIES: History[] = [
  {
    name: 'semantic-release: placeholder version, first release then bumps',
    files: { 'package.json': pkg('0.0.0-development') },
    steps: [
      { commit: 'feat: first', release: 'v1.0.0' },
      { commit: 'fix: a', release: 'v1.0.1' },
      { commit: 'feat: b', tags: ['v1.1.0-beta.1'] },
      { commit: 'fix: c', release: 'v1.1.0' },
      { commit: 'feat!: d', release: 'v2.0.0' },
    ],
  },
  {
    name: 'package.json without a version',
    files: { 'package.json': pkg() },
    steps: [
      { commit: 'feat: first', release: 'v1.0.0' },
      { commit: 'perf: a', release: 'v1.0.1' },
      { commit: 'feat: b', release: 'v1.1.0' },
    ],
  },
  {
    name: 'stale lock file',
    files: { 'package.json': pkg('2.0.0'), 'package-lock.json': lock('1.9.0') },
    steps: [
      { commit: 'chore: tag', tags: ['v2.0.0'] },
      { commit: 'fix: a', release: 'v2.0.1' },
      { commit: 'feat: b', release: 'v2.1.0' },
    ],
  },
  {
    name: 'mixed v and bare tags (a bare 8.0.1 between v8.0.0 and v8.0.2)',
    files: { VERSION: '8.0.0\n' },
    steps: [
      { commit: 'chore: tag', tags: ['v8.0.0'] },
      { commit: 'fix: a', tags: ['8.0.1'] },
      { commit: 'fix: b', release: '8.0.2', tags: ['v8.0.2'] },
      { commit: 'feat: c', release: 'v8.1.0' },
    ],
  },
  {
    name: 'switch from v11.x to bare 12.0.0',
    files: { VERSION: '11.3.0\n' },
    steps: [
      { commit: 'chore: tag', tags: ['v11.3.0'] },
      { commit: 'feat!: new major', tags: ['12.0.0'] },
      { commit: 'fix: a', release: '12.0.1' },
      { commit: 'feat: b (#9)\n\n* feat: b\n* docs: typo [skip ci]\n', release: '12.1.0' },
    ],
  },
];

export interface ReplayResult {
  runs: number;
  expected: number;
  failures: string[];
}

/** Builds every history and plans at each release; a planning error counts as a failure. */
export async function replay(histories: readonly History[] = HISTORIES): Promise<ReplayResult> {
  const result: ReplayResult = { runs: 0, expected: 0, failures: [] };
  const dirs: string[] = [];
  try {
    for (const h of histories) {
      // TestRepo.create's temp dirs are cleaned by vitest hooks; the bench makes and removes its own.
      const repo = new TestRepo(mkdtempSync(join(tmpdir(), 'signet-replay-')));
      dirs.push(repo.dir);
      repo.git('init', '-q', '-b', 'main');
      repo.git('config', 'user.name', 'Replay');
      repo.git('config', 'user.email', 'replay@signet.invalid');
      repo.git('config', 'commit.gpgsign', 'false');
      repo.git('config', 'tag.gpgsign', 'false');
      repo.commit('chore: initial commit', h.files);
      for (const step of h.steps) {
        repo.commit(
          step.commit,
          step.files ?? { [`src/${result.runs}-${h.steps.indexOf(step)}.txt`]: step.commit },
        );
        if (step.release) {
          result.runs++;
          try {
            const { plan } = await planFromRepo({ cwd: repo.dir, channel: 'stable', env: {} });
            if (plan.tag === step.release) result.expected++;
            else
              result.failures.push(
                `${h.name}: ${step.commit.split('\n')[0]} gave ${plan.tag}, expected ${step.release}`,
              );
          } catch (e) {
            result.failures.push(`${h.name}: ${step.commit.split('\n')[0]} failed: ${(e as Error).message}`);
          }
          repo.tag(step.release);
        }
        for (const t of step.tags ?? []) if (t !== step.release) repo.tag(t);
      }
    }
  } finally {
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
  return result;
}

if (import.meta.main) {
  const t0 = performance.now();
  const r = await replay();
  console.log(
    `replay: ${r.expected} of ${r.runs} planning runs gave the released version (${Math.round(performance.now() - t0)} ms)`,
  );
  for (const f of r.failures) console.log(`  ✗ ${f}`);
  process.exit(r.failures.length ? 1 : 0);
}
