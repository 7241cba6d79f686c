/**
 * package.json stays honest: every runtime dependency is imported by the code that ships
 * (tools/, the actions' sources), a package only the benchmarks or tests use is a dev dependency,
 * and each @types/* package has the major of what it describes (@types/node: the Node release
 * Signet targets, 24).
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..', '..');
const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as {
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(root, dir), { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      if (e.name !== 'node_modules' && e.name !== 'dist') out.push(...sources(p));
    } else if (/\.(ts|mts|js|mjs)$/.test(e.name) && !/\.test\.ts$/.test(e.name)) out.push(p);
  }
  return out;
}
const imported = (files: string[], name: string) => {
  const re = new RegExp(
    `(?:from|import\\(|require\\(|resolve\\()\\s*['"]${name.replace(/[/.]/g, '\\$&')}(?:/[^'"]*)?['"]`,
  );
  return files.filter((f) => re.test(readFileSync(join(root, f), 'utf8')));
};
const shipped = [
  ...sources('tools'),
  ...readdirSync(join(root, 'actions')).flatMap((a) => {
    try {
      return sources(join('actions', a, 'src'));
    } catch {
      return [];
    }
  }),
];
const major = (range: string) => Number(/\d+/.exec(range)?.[0]);
const installedMajor = (name: string) =>
  major(
    (
      JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')) as {
        version: string;
      }
    ).version,
  );

describe('package.json', () => {
  it('every runtime dependency is imported by the shipped code (or is the peer another one needs)', () => {
    const deps = Object.keys(pkg.dependencies);
    const direct = deps.filter((d) => imported(shipped, d).length > 0);
    // e.g. ioredis: bullmq's (optional) peer, the Redis client it is handed
    const peers = new Set(
      direct.flatMap((d) =>
        Object.keys(
          (
            JSON.parse(readFileSync(join(root, 'node_modules', d, 'package.json'), 'utf8')) as {
              peerDependencies?: Record<string, string>;
            }
          ).peerDependencies ?? {},
        ),
      ),
    );
    expect(deps.filter((d) => !direct.includes(d) && !peers.has(d))).toEqual([]);
  });

  it('@types/* majors match what they describe (no @types for a package that ships its own)', () => {
    // @types/yargs stops at 17 on the registry: yargs 18 ships only its browser types
    const known: Record<string, number> = { node: 24, yargs: 17 };
    for (const [name, range] of Object.entries(pkg.devDependencies)) {
      if (!name.startsWith('@types/')) continue;
      const target = name.slice('@types/'.length);
      if (target === 'node') {
        expect(major(range), name).toBe(known.node);
        continue;
      }
      const own = JSON.parse(readFileSync(join(root, 'node_modules', target, 'package.json'), 'utf8')) as {
        types?: string;
        typings?: string;
      };
      expect(own.types ?? own.typings, `${target} ships its own types: drop ${name}`).toBeUndefined();
      expect(major(range), name).toBe(known[target] ?? installedMajor(target));
    }
  });
});
