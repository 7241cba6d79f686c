/**
 * Where Signet's own files are (templates, workflows, schema, package.json), found by walking up
 * from this module to the folder whose package.json names the package. The same lookup works from
 * the TypeScript sources, from the built JavaScript of the installed package and from a bundled
 * action (actions/<name>/dist/index.js inside a checkout of Signet's repository).
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The npm package name (the name `signet` is taken on the registry). */
export const PACKAGE_NAME = 'signet-release';
/** The repository that hosts the actions (`uses: signet-release/signet/actions/<name>@v1`). */
export const ACTIONS_REPOSITORY = 'signet-release/signet';

let cachedRoot: string | undefined;
let cachedVersion: string | undefined;

export function packageRoot(): string {
  if (cachedRoot) return cachedRoot;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      try {
        if ((JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string }).name === PACKAGE_NAME) {
          cachedRoot = dir;
          return dir;
        }
      } catch {
        // not ours; keep walking up
      }
    }
    const parent = dirname(dir);
    if (parent === dir)
      throw new Error(`cannot find the ${PACKAGE_NAME} package folder above ${import.meta.url}`);
    dir = parent;
  }
}

/** A path inside the package (`packagePath('templates', 'nsis')`). */
export function packagePath(...parts: string[]): string {
  return join(packageRoot(), ...parts);
}

/** Signet's own version (package.json). */
export function packageVersion(): string {
  cachedVersion ??= (JSON.parse(readFileSync(packagePath('package.json'), 'utf8')) as { version: string })
    .version;
  return cachedVersion;
}

/**
 * A script `name` beside the module at `moduleUrl`, with that module's own extension (`.ts` next
 * to the sources, `.js` in the built package: Node does not strip types under node_modules), else
 * its `.ts` (a bundled action ships the `.ts` copy scripts/build.ts puts next to it); the
 * own-extension path when neither is there.
 */
export function siblingScript(moduleUrl: string, name: string): string {
  const self = fileURLToPath(moduleUrl);
  const own = join(dirname(self), name + extname(self));
  if (existsSync(own)) return own;
  const ts = join(dirname(self), `${name}.ts`);
  return existsSync(ts) ? ts : own;
}
