/**
 * `npm run build`: bundles every action (actions/<name>/src/main.ts → actions/<name>/dist/index.js)
 * with esbuild — one self-contained ESM file per action for `runs.using: node24`, no node_modules
 * needed on the runner. `--check` builds in memory and fails when the committed dist differs.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const actionsDir = join(root, 'actions');

/** Files (path → content) that make up the committed dist of every action. */
export async function bundleActions(): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const names = readdirSync(actionsDir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(actionsDir, d.name, 'src', 'main.ts')))
    .map((d) => d.name)
    .sort();
  for (const name of names) {
    const result = await build({
      entryPoints: [join(actionsDir, name, 'src', 'main.ts')],
      bundle: true,
      // Same output whatever the current directory, and with node_modules symlinked (CI caches).
      absWorkingDir: root,
      preserveSymlinks: true,
      platform: 'node',
      target: 'node24',
      format: 'esm',
      write: false,
      outfile: join(actionsDir, name, 'dist', 'index.js'),
      minify: false,
      treeShaking: true,
      legalComments: 'none',
      charset: 'utf8',
      logLevel: 'silent',
      // jsonc-parser's `main` is a UMD build that require()s its parts by a computed path (which a
      // bundle cannot resolve: "Cannot find module './impl/format'"); its ESM build bundles.
      alias: { 'jsonc-parser': './node_modules/jsonc-parser/lib/esm/main.js' },
      // CommonJS dependencies bundled into ESM still call require() for node builtins.
      banner: {
        js: "import { createRequire as __signetCreateRequire } from 'node:module';\nconst require = __signetCreateRequire(import.meta.url);",
      },
    });
    for (const f of result.outputFiles) out.set(relative(root, f.path), f.text);
    out.set(`actions/${name}/dist/package.json`, '{ "type": "module" }\n');
    if (name === 'site-installers') {
      // makensis runs this dependency-free helper by path next to the bundle (see installers/sign-server.ts).
      out.set(
        `actions/${name}/dist/sign-client.ts`,
        readFileSync(join(root, 'tools/lib/installers/sign-client.ts'), 'utf8'),
      );
      // a batch starts its programs from this dependency-free helper, found next to the bundle (exec/runner.ts)
      out.set(
        `actions/${name}/dist/spawn-helper.ts`,
        readFileSync(join(root, 'tools/lib/exec/spawn-helper.ts'), 'utf8'),
      );
    }
  }
  return out;
}

/** Paths whose committed content differs from a fresh build (missing files included). */
export async function staleDist(): Promise<string[]> {
  const files = await bundleActions();
  const stale: string[] = [];
  for (const [path, text] of files) {
    const abs = join(root, path);
    if (!existsSync(abs) || readFileSync(abs, 'utf8') !== text) stale.push(path);
  }
  return stale;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  if (process.argv.includes('--check')) {
    const stale = await staleDist();
    if (stale.length) {
      process.stderr.write(`dist is out of date (run npm run build):\n  ${stale.join('\n  ')}\n`);
      process.exit(1);
    }
    process.stdout.write('dist is up to date\n');
  } else {
    const files = await bundleActions();
    for (const [path, text] of files) {
      const abs = join(root, path);
      mkdirSync(dirname(abs), { recursive: true });
      writeFileSync(abs, text);
    }
    process.stdout.write(`built ${[...files.keys()].filter((p) => p.endsWith('index.js')).join(', ')}\n`);
  }
}
