/**
 * Version planning and notes on a synthetic repository of 100,000 commits and 2,000 tags (a third
 * prereleases), against the floor: `git log --format=… <range>` + `git tag --list`.
 * Prints, for the range since the last stable tag and for the whole history:
 *   - floor (ms), in-process planFromRepo / notesFromRepo (ms) and the ratio to the floor;
 *   - the CLI end to end (`signet version`, `signet changelog`; Node start-up included);
 *   - peak RSS of the planning process (goal < 200 MB);
 * and the hand parser against conventional-commits-parser on the same messages.
 * The repository is built once with `git fast-import` into bench/.data/version-100k.
 *
 * Then the start-up of `signet version` on a small range: the CLI from sources and from the built
 * package against `node -e 0` + the git floor (`--startup` runs only that part).
 *
 *   node bench/version.ts [--commits 100000] [--tags 2000] [--rounds 5] [--startup]
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');

function arg(name: string, dflt: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : dflt;
}

const TYPES = ['feat', 'fix', 'fix', 'chore', 'docs', 'refactor', 'perf', 'test', 'ci', 'build'];
const SCOPES = ['agent', 'server', 'dashboard', 'installer', null];

function message(i: number): string {
  const type = TYPES[i % TYPES.length]!;
  const scope = SCOPES[i % SCOPES.length];
  const head = `${type}${scope ? `(${scope})` : ''}${i % 997 === 0 ? '!' : ''}: change number ${i} of the synthetic history`;
  if (i % 3 === 0) return `${head}\n`;
  const body = `Body line one for commit ${i}, explaining the change in some detail.\nSecond line of the body.\n`;
  const footer =
    i % 1999 === 0
      ? '\nBREAKING CHANGE: the configuration format changed\n'
      : i % 5 === 0
        ? `\nRefs: #${i}\n`
        : '';
  return `${head}\n\n${body}${footer}`;
}

/** Builds the repository with one fast-import stream. Returns its path. */
function build(commits: number, tags: number): string {
  const dir = join(here, '.data', `version-${commits / 1000}k-${tags}t`);
  if (existsSync(join(dir, '.built'))) return dir;
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  spawnSync('git', ['init', '-q', '-b', 'main', dir], { stdio: 'inherit' });
  const stable = Math.round((tags * 2) / 3);
  const pre = tags - stable;
  // stable tag k sits at commit round(k * (commits - 60) / stable): the last leaves 60 commits after it
  const at = (k: number) => Math.round((k * (commits - 60)) / stable);
  const chunks: string[] = [];
  let t = 1_600_000_000;
  let major = 0;
  let minor = 1;
  let patch = 0;
  let made = 0;
  let preMade = 0;
  for (let i = 1; i <= commits; i++) {
    const msg = Buffer.from(message(i));
    const file =
      i === 1
        ? 'M 644 inline VERSION\ndata 6\n0.1.0\n'
        : `M 644 inline src/f${i % 200}.txt\ndata ${String(i).length}\n${i}\n`;
    chunks.push(
      `commit refs/heads/main\nmark :${i}\nauthor Bench <b@x> ${t} +0000\ncommitter Bench <b@x> ${t} +0000\ndata ${msg.length}\n${msg}${i > 1 ? `from :${i - 1}\n` : ''}${file}\n`,
    );
    t += 60;
    if (made < stable && i === at(made + 1)) {
      made++;
      if (made % 50 === 0) {
        major++;
        minor = 0;
        patch = 0;
      } else if (made % 7 === 0) {
        minor++;
        patch = 0;
      } else patch++;
      const v = `${major}.${minor}.${patch}`;
      if (made % 2) chunks.push(`reset refs/tags/v${v}\nfrom :${i}\n\n`);
      else chunks.push(`tag v${v}\nfrom :${i}\ntagger Bench <b@x> ${t} +0000\ndata ${v.length + 1}\nv${v}\n`);
      if (preMade < pre && made % 2 === 0) {
        preMade++;
        const kind = ['beta', 'rc', 'alpha', 'next'][made % 4];
        chunks.push(
          `reset refs/tags/v${major}.${minor}.${patch + 1}-${kind}.${made}\nfrom :${Math.max(1, i - 5)}\n\n`,
        );
      }
    }
  }
  while (preMade < pre) {
    preMade++;
    chunks.push(
      `reset refs/tags/v${major}.${minor}.${patch + 1}-beta.${preMade}\nfrom :${commits - (preMade % 50)}\n\n`,
    );
  }
  const r = spawnSync('git', ['fast-import', '--quiet'], {
    cwd: dir,
    input: chunks.join(''),
    maxBuffer: 1 << 30,
  });
  if (r.status !== 0) throw new Error(`fast-import failed: ${r.stderr}`);
  spawnSync('git', ['reset', '-q', '--hard', 'main'], { cwd: dir });
  spawnSync('git', ['gc', '-q'], { cwd: dir });
  writeFileSync(join(dir, '.git', 'info', 'exclude'), '.built\n');
  writeFileSync(join(dir, '.built'), '');
  return dir;
}

/** user+sys seconds of this process's reaped children (fields 16, 17 of /proc/self/stat). */
function childrenCpu(): number {
  const stat = readFileSync('/proc/self/stat', 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[13]) + Number(fields[14])) * 10; // USER_HZ = 100 → ms
}

/** CPU ms (user+sys) of this process plus its reaped children since `since`. */
function cpuSince(since: { own: NodeJS.CpuUsage; kids: number }): number {
  const own = process.cpuUsage(since.own);
  return (own.user + own.system) / 1000 + (childrenCpu() - since.kids);
}

function cpuMark(): { own: NodeJS.CpuUsage; kids: number } {
  return { own: process.cpuUsage(), kids: childrenCpu() };
}

function ms(f: () => void): number {
  const s = performance.now();
  f();
  return performance.now() - s;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

function floor(dir: string, range: string): { ms: number; cpu: number } {
  const c = cpuMark();
  const wall = ms(() => {
    const log = spawnSync('git', ['log', '--format=%H%x1f%P%x1f%B', range], { cwd: dir, maxBuffer: 1 << 30 });
    const tags = spawnSync('git', ['tag', '--list'], { cwd: dir, maxBuffer: 1 << 30 });
    if (log.status !== 0 || tags.status !== 0) throw new Error('floor failed');
  });
  const kids = childrenCpu() - c.kids; // only the git processes (the bench's own JS is not counted)
  return { ms: wall, cpu: kids };
}

/** Runs the in-process measurement in a fresh Node (so RSS is the planning's own). */
function child(
  kind: string,
  dir: string,
  prefix: string,
): { ms: number; cpu: number; rss: number; commits: number; version: string } {
  const r = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--child', kind, dir, prefix], {
    encoding: 'utf8',
    maxBuffer: 1 << 26,
  });
  if (r.status !== 0) throw new Error(`child failed: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!);
}

async function childMode(kind: string, dir: string, prefix: string): Promise<void> {
  const { planFromRepo } = await import('../tools/lib/version/repo.ts');
  const { notesFromRepo } = await import('../tools/lib/release/notes.ts');
  const { parseConfig } = await import('../tools/lib/config/load.ts');
  const config = parseConfig({ version: { tagPrefix: prefix, manifests: ['VERSION'] } }, 'bench');
  const c0 = cpuMark();
  const s = performance.now();
  let commits = 0;
  let version = '';
  if (kind === 'plan') {
    const rp = await planFromRepo({
      cwd: dir,
      config: config.version,
      channel: 'stable',
      env: {},
      lean: true,
    });
    commits = rp.commits.length;
    version = String(rp.plan.version);
  } else {
    const all = kind === 'notes-all';
    const r = await notesFromRepo({ cwd: dir, config, all, date: '2026-01-01', env: {} });
    commits = r.commits;
    version = `${r.notes.version} (${r.notes.entries} entries)`;
  }
  const elapsed = performance.now() - s;
  const cpu = cpuSince(c0);
  process.stdout.write(
    `${JSON.stringify({ ms: elapsed, cpu, rss: process.resourceUsage().maxRSS / 1024, commits, version })}\n`,
  );
}

function cli(dir: string, args: string[]): { ms: number; cpu: number } {
  const c = cpuMark();
  const wall = ms(() => {
    const r = spawnSync(process.execPath, [join(root, 'tools/cli/bin.ts'), '--cwd', dir, ...args], {
      encoding: 'utf8',
      maxBuffer: 1 << 28,
    });
    if (r.status !== 0) throw new Error(`signet ${args.join(' ')} failed: ${r.stderr}`);
  });
  return { ms: wall, cpu: childrenCpu() - c.kids };
}

async function parserBench(): Promise<void> {
  const { parseCommit } = await import('../tools/lib/version/conventional.ts');
  const { CommitParser } = await import('conventional-commits-parser');
  const n = 20_000;
  const msgs = Array.from({ length: n }, (_, i) => message(i + 1));
  const raw = msgs.map((m, i) => ({ sha: String(i).padStart(40, '0'), parents: ['p'], message: m }));
  const hand = median(
    [0, 1, 2].map(() =>
      ms(() => {
        for (const r of raw) parseCommit(r);
      }),
    ),
  );
  const parser = new CommitParser({});
  const lib = median(
    [0, 1, 2].map(() =>
      ms(() => {
        for (const m of msgs) parser.parse(m);
      }),
    ),
  );
  console.log(
    `parser (${n} messages): hand ${hand.toFixed(0)} ms, conventional-commits-parser ${lib.toFixed(0)} ms → library is ${(lib / hand).toFixed(1)}x slower`,
  );
}

/** The package build (tsc -p tsconfig.build.json) in bench/.data/package, beside a copy of package.json. */
function buildPackage(): string {
  const dir = join(here, '.data', 'package');
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const tsc = join(root, 'node_modules', '.bin', 'tsc');
  const r = spawnSync(tsc, ['-p', join(root, 'tsconfig.build.json'), '--outDir', join(dir, 'dist')], {
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`package build failed: ${r.stdout}${r.stderr}`);
  writeFileSync(join(dir, 'package.json'), readFileSync(join(root, 'package.json')));
  return dir;
}

/** Wall and CPU ms per run of `runs`, averaged over `times` runs (CPU is counted in 10 ms ticks). */
function timed(
  runs: [string, string[]][],
  env: (i: number) => NodeJS.ProcessEnv = () => process.env,
  times = 4,
): { ms: number; cpu: number } {
  const c = cpuMark();
  const wall = ms(() => {
    for (let i = 0; i < times; i++)
      for (const [file, args] of runs) {
        const r = spawnSync(file, args, { encoding: 'utf8', env: env(i), maxBuffer: 1 << 26 });
        if (r.status !== 0) throw new Error(`${file} ${args.join(' ')} failed: ${r.stderr}`);
      }
  });
  return { ms: wall / times, cpu: (childrenCpu() - c.kids) / times };
}

/**
 * Start-up of `signet version` on a small range (60 commits since the last stable tag): the floor
 * `node -e 0` + `git log <range>` + `git tag --list`, against the CLI from the TypeScript sources
 * (type stripping) and from the built JavaScript of the package — with a warm V8 compile cache
 * (every start after the first) and a cold one (a fresh cache folder per run).
 */
function startupBench(rounds: number): void {
  const dir = build(200, 6);
  const last = spawnSync('git', ['describe', '--tags', '--abbrev=0', '--exclude', '*-*'], {
    cwd: dir,
    encoding: 'utf8',
  }).stdout.trim();
  const pkg = buildPackage();
  const node = process.execPath;
  const args = ['--cwd', dir, 'version', '--channel', 'stable', '--json'];
  const floorRuns: [string, string[]][] = [
    [node, ['-e', '0']],
    ['git', ['-C', dir, 'log', '--format=%H%x1f%P%x1f%B', `${last}..HEAD`]],
    ['git', ['-C', dir, 'tag', '--list']],
  ];
  const variants: [string, [string, string[]][]][] = [
    ['floor: node -e 0 + git log + git tag', floorRuns],
    ['signet version, from sources (.ts)', [[node, [join(root, 'tools/cli/bin.ts'), ...args]]]],
    ['signet version, built package (.js)', [[node, [join(pkg, 'dist/cli/bin.js'), ...args]]]],
  ];
  const cacheRoot = join(here, '.data', 'compile-cache');
  const results = new Map<
    string,
    { warm: { ms: number; cpu: number }[]; cold: { ms: number; cpu: number }[] }
  >();
  for (const [name, runs] of variants) {
    timed(runs, undefined, 1); // fill the default compile cache
    results.set(name, { warm: [], cold: [] });
  }
  for (let i = 0; i < rounds; i++) {
    for (const [name, runs] of variants) {
      const r = results.get(name)!;
      r.warm.push(timed(runs));
      rmSync(cacheRoot, { recursive: true, force: true });
      r.cold.push(timed(runs, (k) => ({ ...process.env, NODE_COMPILE_CACHE: join(cacheRoot, `${i}-${k}`) })));
    }
  }
  rmSync(cacheRoot, { recursive: true, force: true });
  const med = (xs: { ms: number; cpu: number }[]) => ({
    ms: median(xs.map((x) => x.ms)),
    cpu: median(xs.map((x) => x.cpu)),
  });
  const floorWarm = med(results.get(variants[0]![0])!.warm);
  const floorCold = med(results.get(variants[0]![0])!.cold);
  const src = results.get(variants[1]![0])!;
  const lines = [`start-up on a small range (${last}..HEAD, 60 commits), median of ${rounds} × 4 runs:`];
  for (const [name] of variants) {
    const r = results.get(name)!;
    const w = med(r.warm);
    const c = med(r.cold);
    const vsSrc =
      name === variants[2]![0] ? `  vs sources ${(w.ms / med(src.warm).ms).toFixed(2)}x wall` : '';
    lines.push(
      `  ${name.padEnd(38)} warm ${w.ms.toFixed(0).padStart(4)} ms wall (${(w.ms / floorWarm.ms).toFixed(2)}x) ${w.cpu.toFixed(0).padStart(4)} ms cpu (${(w.cpu / floorWarm.cpu).toFixed(2)}x)` +
        ` | cold ${c.ms.toFixed(0).padStart(4)} ms wall (${(c.ms / floorCold.ms).toFixed(2)}x) ${c.cpu.toFixed(0).padStart(4)} ms cpu (${(c.cpu / floorCold.cpu).toFixed(2)}x)${vsSrc}`,
    );
  }
  console.log(lines.join('\n'));
}

async function main(): Promise<void> {
  if (process.argv[2] === '--child') return childMode(process.argv[3]!, process.argv[4]!, process.argv[5]!);
  const commits = arg('commits', 100_000);
  const tags = arg('tags', 2000);
  const rounds = arg('rounds', 5);
  if (process.argv.includes('--startup')) return startupBench(rounds);
  const t0 = performance.now();
  const dir = build(commits, tags);
  console.log(
    `repository: ${dir} (${commits} commits, ${tags} tags; ready in ${((performance.now() - t0) / 1000).toFixed(1)} s)`,
  );
  const last = spawnSync(
    'git',
    ['describe', '--tags', '--abbrev=0', '--match', 'v[0-9]*.[0-9]*.[0-9]', '--exclude', '*-*'],
    {
      cwd: dir,
      encoding: 'utf8',
    },
  ).stdout.trim();
  const cases = [
    { name: `since last tag (${last}..HEAD)`, prefix: 'v', range: `${last}..HEAD` },
    { name: 'whole history (no stable tag of the prefix)', prefix: 'nope-v', range: 'HEAD' },
  ];
  const rows: string[] = [];
  const fmt = (x: { ms: number; cpu: number }, fl: { ms: number; cpu: number }) =>
    `${x.ms.toFixed(0).padStart(6)} ms wall (${(x.ms / fl.ms).toFixed(2)}x)  ${x.cpu.toFixed(0).padStart(6)} ms cpu (${(x.cpu / fl.cpu).toFixed(2)}x)`;
  const med = (xs: { ms: number; cpu: number }[]) => ({
    ms: median(xs.map((x) => x.ms)),
    cpu: median(xs.map((x) => x.cpu)),
  });
  for (const c of cases) {
    const fl = med(Array.from({ length: rounds }, () => floor(dir, c.range)));
    const plans = Array.from({ length: rounds }, () => child('plan', dir, c.prefix));
    const rss = Math.max(...plans.map((p) => p.rss));
    const cliPlan = med(
      Array.from({ length: rounds }, () =>
        cli(dir, ['version', '--channel', 'stable', '--tag-prefix', c.prefix, '--json']),
      ),
    );
    const notesKind = c.prefix === 'v' ? 'notes' : 'notes-all';
    const notes = Array.from({ length: rounds }, () => child(notesKind, dir, 'v'));
    const cliNotes = med(
      Array.from({ length: rounds }, () =>
        cli(dir, ['changelog', ...(c.prefix === 'v' ? [] : ['--all']), '--date', '2026-01-01']),
      ),
    );
    rows.push(
      `${c.name}: ${plans[0]!.commits} commits → ${plans[0]!.version}\n` +
        `  floor git log + git tag --list       ${fl.ms.toFixed(0).padStart(6)} ms wall          ${fl.cpu.toFixed(0).padStart(6)} ms cpu\n` +
        `  planFromRepo (in process)           ${fmt(med(plans), fl)}   peak RSS ${rss.toFixed(0)} MB (goal: 1.5x, < 1 s, < 200 MB)\n` +
        `  signet version (CLI, with start-up) ${fmt(cliPlan, fl)}\n` +
        `  notesFromRepo (in process)          ${fmt(med(notes), fl)}   peak RSS ${Math.max(...notes.map((n) => n.rss)).toFixed(0)} MB   ${notes[0]!.version}\n` +
        `  signet changelog (CLI)              ${fmt(cliNotes, fl)}`,
    );
  }
  console.log(rows.join('\n'));
  const startup = median(
    Array.from({ length: rounds }, () => ms(() => spawnSync(process.execPath, ['-e', '0']))),
  );
  console.log(`node start-up alone: ${startup.toFixed(0)} ms`);
  startupBench(rounds);
  await parserBench();
}

await main();
