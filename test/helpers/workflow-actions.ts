/**
 * The `uses:` steps of the workflow harness: actions/checkout as a clone of the test repository,
 * actions/upload-artifact and download-artifact as folders, and node actions (Signet's own, or
 * `./…` in the workspace) run from their committed `dist/` with INPUT_* the way a runner does.
 */
import {
  cpSync,
  existsSync,
  globSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
} from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import YAML from 'yaml';
import { collect } from './spawn.ts';

export interface StepIo {
  /** Evaluated `with:` values. */
  with: Record<string, string>;
  /** Environment of the step (runner variables + workflow/job/step env). */
  env: Record<string, string>;
  workspace: string;
  /** Appends to the step's log. */
  log: (text: string) => void;
  /** Evaluates `${{ }}` in an action.yml default. */
  interpolate: (text: string) => string;
}

export interface ArtifactStore {
  dir: string;
  /** name → retention-days (as requested) */
  retention: Map<string, number | undefined>;
}

const truthy = (v: string | undefined, fallback: boolean) =>
  v === undefined || v === '' ? fallback : /^true$/i.test(v);

export async function gitSync(args: string[], cwd: string, env: Record<string, string>): Promise<string> {
  const r = await collect('git', args, { cwd, env });
  if (r.code !== 0) throw new Error(`git ${args.join(' ')} failed (${r.code}): ${r.stderr.trim()}`);
  return r.stdout.trim();
}

/**
 * actions/checkout into a folder that exists and is not already that repository deletes the
 * folder's contents first ("Deleting the contents of …"), as the real action does.
 */
function emptyForCheckout(dest: string, io: StepIo): void {
  mkdirSync(dest, { recursive: true });
  const entries = readdirSync(dest);
  if (!entries.length) return;
  io.log(`Deleting the contents of '${dest}'\n`);
  for (const e of entries) rmSync(join(dest, e), { recursive: true, force: true });
}

/** actions/checkout: clone of the test repository (`origin`), shallow unless fetch-depth is 0. */
export async function checkout(
  io: StepIo,
  origin: string,
  defaultRef: string,
  actionRepos: Record<string, string> = {},
): Promise<void> {
  const dest = resolve(io.workspace, io.with['path'] || '.');
  if (!dest.startsWith(io.workspace))
    throw new Error(`checkout path ${io.with['path']} leaves the workspace`);
  const other = io.with['repository'];
  if (other && other !== io.env['GITHUB_REPOSITORY']) {
    // an action repository the harness knows (Signet's own): a clone of its local checkout's HEAD
    const local = actionRepos[other];
    if (!local) throw new Error(`checkout of another repository (${other}) is not modelled`);
    emptyForCheckout(dest, io);
    await gitSync(['clone', '--quiet', local, dest], io.workspace, { ...io.env, GIT_TERMINAL_PROMPT: '0' });
    io.log(
      `checkout: ${other} (HEAD of ${local}; ref ${io.with['ref'] || 'default'} not modelled) → ${relative(io.workspace, dest)}\n`,
    );
    return;
  }
  emptyForCheckout(dest, io);
  const depth = Number(io.with['fetch-depth'] ?? '1');
  const ref = io.with['ref'] || defaultRef;
  const env = { ...io.env, GIT_TERMINAL_PROMPT: '0' };
  const url = `file://${origin}`;
  const args = ['clone', '--quiet'];
  if (depth > 0) args.push('--depth', String(depth), '--no-tags');
  await gitSync([...args, url, dest], io.workspace, env);
  // as actions/checkout does: a tag is fetched into refs/tags/, a branch into refs/remotes/origin/
  const name = ref.replace(/^refs\/(heads|tags)\//, '');
  const refs = await gitSync(['show-ref'], origin, env);
  const isTag =
    ref.startsWith('refs/tags/') ||
    (!ref.startsWith('refs/heads/') && refs.includes(` refs/tags/${name}\n`)) ||
    refs.endsWith(` refs/tags/${name}`);
  const refspec = isTag
    ? `+refs/tags/${name}:refs/tags/${name}`
    : `+refs/heads/${name}:refs/remotes/origin/${name}`;
  const fetchArgs = [
    'fetch',
    '--quiet',
    ...(depth > 0 ? ['--depth', String(depth)] : ['--tags']),
    'origin',
    refspec,
  ];
  await gitSync(fetchArgs, dest, env);
  await gitSync(
    ['checkout', '--quiet', ...(isTag ? [`refs/tags/${name}`] : ['-B', name, `refs/remotes/origin/${name}`])],
    dest,
    env,
  );
  if (!truthy(io.with['persist-credentials'], true))
    io.log('checkout: persist-credentials false (push credentials are not modelled)\n');
  io.log(`checkout: ${ref} → ${relative(io.workspace, dest) || '.'} (depth ${depth || 'full'})\n`);
}

function listFiles(dir: string): string[] {
  const out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out.push(...listFiles(p));
    else out.push(p);
  }
  return out;
}

/** actions/upload-artifact: the matched files under the least common ancestor of the search paths. */
export function uploadArtifact(io: StepIo, store: ArtifactStore): void {
  const name = io.with['name'] || 'artifact';
  const patterns = (io.with['path'] ?? '')
    .split('\n')
    .map((s) => s.trim())
    .filter(Boolean);
  const files = new Set<string>();
  const roots: string[] = [];
  for (const p of patterns) {
    const abs = isAbsolute(p) ? p : join(io.workspace, p);
    const wild = abs.search(/[*?[{]/);
    roots.push(
      wild < 0
        ? existsSync(abs) && statSync(abs).isDirectory()
          ? abs
          : dirname(abs)
        : dirname(abs.slice(0, wild + 1)),
    );
    for (const m of wild < 0 ? (existsSync(abs) ? [abs] : []) : globSync(abs))
      for (const f of statSync(m).isDirectory() ? listFiles(m) : [m]) files.add(f);
  }
  const policy = io.with['if-no-files-found'] || 'warn';
  if (!files.size) {
    if (policy === 'error')
      throw new Error(`upload-artifact ${name}: no files found for ${patterns.join(', ')}`);
    io.log(`upload-artifact ${name}: no files found (${policy})\n`);
    return;
  }
  if (store.retention.has(name) && !truthy(io.with['overwrite'], false))
    throw new Error(`upload-artifact: an artifact named ${name} already exists`);
  let root = roots[0]!;
  for (const r of roots)
    while (!(`${r}${sep}`.startsWith(`${root}${sep}`) || r === root)) root = dirname(root);
  const target = join(store.dir, name);
  for (const f of files) {
    const to = join(target, relative(root, f));
    mkdirSync(dirname(to), { recursive: true });
    cpSync(f, to);
  }
  const days = io.with['retention-days'] ? Number(io.with['retention-days']) : undefined;
  store.retention.set(name, days);
  io.log(`upload-artifact ${name}: ${files.size} file(s)${days ? `, retention ${days} day(s)` : ''}\n`);
}

/** actions/download-artifact: by name, by pattern (merge-multiple or one folder per artifact), or all. */
export function downloadArtifact(io: StepIo, store: ArtifactStore): void {
  const dest = resolve(io.workspace, io.with['path'] || '.');
  const all = existsSync(store.dir) ? readdirSync(store.dir) : [];
  const name = io.with['name'];
  if (name) {
    if (!all.includes(name)) throw new Error(`download-artifact: no artifact named ${name}`);
    cpSync(join(store.dir, name), dest, { recursive: true });
    io.log(`download-artifact ${name} → ${relative(io.workspace, dest) || '.'}\n`);
    return;
  }
  const pattern = io.with['pattern'];
  const chosen = pattern ? all.filter((a) => matchesGlob(a, pattern)) : all;
  const merge = truthy(io.with['merge-multiple'], false);
  for (const a of chosen) cpSync(join(store.dir, a), merge ? dest : join(dest, a), { recursive: true });
  io.log(`download-artifact ${chosen.join(', ') || '(none)'} → ${relative(io.workspace, dest) || '.'}\n`);
}

/** Minimatch-style pattern of an artifact name: *, ?, {a,b}. */
function matchesGlob(name: string, pattern: string): boolean {
  const alternatives = (p: string): string[] => {
    const m = /\{([^{}]*)\}/.exec(p);
    if (!m) return [p];
    return m[1]!
      .split(',')
      .flatMap((alt) => alternatives(p.slice(0, m.index) + alt + p.slice(m.index + m[0].length)));
  };
  return alternatives(pattern).some((p) =>
    new RegExp(
      `^${p
        .replace(/[.+^$()|[\]\\]/g, '\\$&')
        .replace(/\*/g, '.*')
        .replace(/\?/g, '.')}$`,
    ).test(name),
  );
}

export interface ActionRun {
  code: number;
}

/**
 * A `runs.using: node20|node24` action from its folder: the inputs (with: values, else the
 * action.yml defaults, `${{ }}` evaluated) as INPUT_<NAME>, then `node <main>` in the workspace.
 */
export async function runNodeAction(dir: string, io: StepIo): Promise<ActionRun> {
  const meta = YAML.parse(readFileSync(join(dir, 'action.yml'), 'utf8')) as {
    inputs?: Record<string, { default?: string; required?: boolean }>;
    runs: { using: string; main: string; post?: string };
  };
  if (!/^node(20|24)$/.test(meta.runs.using))
    throw new Error(`runs.using ${meta.runs.using} is not modelled`);
  const env = { ...io.env };
  for (const [name, input] of Object.entries(meta.inputs ?? {})) {
    const v = io.with[name] ?? (input.default !== undefined ? io.interpolate(String(input.default)) : '');
    env[`INPUT_${name.replace(/ /g, '_').toUpperCase()}`] = v;
  }
  for (const name of Object.keys(io.with))
    if (!(name in (meta.inputs ?? {}))) io.log(`##[warning]Unexpected input(s) '${name}'\n`);
  const { code } = await collect(
    process.execPath,
    [join(dir, meta.runs.main)],
    { cwd: io.workspace, env },
    io.log,
  );
  return { code };
}
