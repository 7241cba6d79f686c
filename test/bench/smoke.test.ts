/**
 * Every benchmark still runs: each script in bench/ on tiny inputs, exit 0. The numbers are not
 * looked at (speed goals are the benchmarks' own business); this only keeps them from rotting
 * when the code they drive changes.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const benchDir = join(dirname(fileURLToPath(import.meta.url)), '../../bench');

/** Tiny inputs for each benchmark (a new benchmark must be added here). */
const TINY: Record<string, string[]> = {
  installers: ['--sites', '2', '--rounds', '1', '--mb', '1'],
  'nsis-incremental': ['--sites', '2', '--mb', '1'],
  publish: ['--files', '2', '--mb', '2', '--rounds', '1'],
  redact: [],
  replay: [],
  scale: ['--sites', '3', '--mb', '1', '--rounds', '1'],
  service: ['--sites', '5', '--cold-sites', '2', '--warm', '20', '--concurrency', '4', '--mb', '1'],
  sign: ['--files', '2', '--mb', '1'],
  workers: ['--sites', '3', '--mb', '1'],
  version: ['--commits', '200', '--tags', '20', '--rounds', '1'],
};

const benches = readdirSync(benchDir)
  .filter((f) => f.endsWith('.ts') && f !== 'run.ts' && !f.endsWith('-setup.ts'))
  .map((f) => f.slice(0, -3))
  .sort();

describe('benchmarks run on tiny inputs', () => {
  it('every benchmark has tiny inputs here', () => {
    expect(benches).toEqual(Object.keys(TINY).sort());
  });

  for (const name of benches)
    it(`bench/${name}.ts`, { timeout: 180_000 }, () => {
      const r = spawnSync(process.execPath, [join(benchDir, `${name}.ts`), ...(TINY[name] ?? [])], {
        encoding: 'utf8',
        timeout: 170_000,
      });
      expect(r.status, `${r.stdout.slice(-2000)}\n${r.stderr.slice(-2000)}`).toBe(0);
      expect(r.stdout.trim().length).toBeGreaterThan(0);
    });
});
