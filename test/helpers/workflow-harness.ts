/**
 * A test harness that executes Signet's workflows (workflows/*.yml) job by job on this machine.
 *
 * What it models:
 * - parsing and validation with GitHub's own parser (@actions/workflow-parser); jobs run one at a
 *   time in `needs` order, with job `if:` (default `success()`), `needs.<job>.outputs/result` and
 *   job `outputs:`; job results success / failure / skipped;
 * - `${{ }}` evaluated with GitHub's expression library (@actions/expressions) over `github`,
 *   `inputs`, `secrets`, `vars`, `env`, `needs`, `steps`, `runner`, `job`;
 * - `run:` steps in `bash --noprofile --norc -eo pipefail` (or `shell: sh`), `working-directory`,
 *   `continue-on-error`, step `if:`; the runner files GITHUB_ENV, GITHUB_OUTPUT, GITHUB_PATH and
 *   GITHUB_STEP_SUMMARY with their real semantics (NAME=value and NAME<<DELIM forms; GITHUB_ENV and
 *   GITHUB_PATH apply to the following steps); `::add-mask::` lines are hidden from the log;
 *   an output that contains a secret is dropped, as GitHub does;
 * - a fresh runner per job: its own workspace, RUNNER_TEMP and HOME (no git identity), and a PATH
 *   that holds only the runner image's tools (`image` packages) plus what the job installs with
 *   `sudo apt-get install` (the packages must be installed on this machine; their programs are
 *   linked in), so a job that forgets a tool fails as it would on a runner;
 * - `actions/checkout` as a clone of the test repository (shallow and tag-less unless
 *   `fetch-depth: 0`), `actions/upload-artifact` / `download-artifact` as folders (name, pattern,
 *   merge-multiple, if-no-files-found, retention-days recorded);
 * - Signet's own actions (`uses: signet-release/signet/actions/<name>@<ref>`) and `./…` actions in
 *   the workspace run from their committed `dist/` with INPUT_* (action.yml defaults applied).
 *
 * What it does not model: matrices, services and containers, reusable-workflow jobs
 * (`jobs.<id>.uses`), parallel jobs, `concurrency` and `environment` protection rules,
 * `permissions` and token scopes (the fake forge accepts the one token), post steps (`runs.post`),
 * composite and Docker actions, caches, timeouts, job re-runs, and any third-party action other than
 * the three above. Pushes go to a local bare repository without credentials.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseOutputFile } from './run-dist.ts';
import { collect } from './spawn.ts';
import {
  type ArtifactStore,
  checkout,
  downloadArtifact,
  runNodeAction,
  type StepIo,
  uploadArtifact,
} from './workflow-actions.ts';
import { type ExprContext, evaluate, type Status, tokenString, tokenValue, truthy } from './workflow-expr.ts';
import { mapGet, parseWorkflowFile, type Token } from './workflow-parser.ts';

/** Packages whose programs a fresh ubuntu runner image has (a conservative subset). */
export const RUNNER_IMAGE = [
  'bash',
  'dash',
  'coreutils',
  'findutils',
  'grep',
  'sed',
  'mawk',
  'gzip',
  'tar',
  'git',
  'openssl',
  'curl',
  'diffutils',
  'util-linux',
  'procps',
];

export interface HarnessOptions {
  workflow: string;
  event:
    | { name: 'workflow_dispatch'; inputs?: Record<string, string> }
    | {
        name: 'repository_dispatch';
        type: string;
        clientPayload: unknown;
      };
  /** Bare repository that stands for the repository on the forge. */
  origin: string;
  repository: string;
  ref?: string;
  secrets?: Record<string, string>;
  vars?: Record<string, string>;
  forge: { flavor: 'github' | 'gitea'; serverUrl: string; apiUrl: string; token: string };
  /** `owner/name` of an action repository → local folder holding it (Signet's checkout). */
  actionRepos: Record<string, string>;
  /** Folder for workspaces, runner files, artifacts. */
  workDir: string;
  runId?: number;
  runNumber?: number;
  /** Variables every step sees, as a self-hosted runner's `.env` would add (e.g. NODE_EXTRA_CA_CERTS). */
  runnerEnv?: Record<string, string>;
  image?: string[];
}

export interface StepResult {
  id: string;
  name: string;
  outcome: 'success' | 'failure' | 'skipped';
  log: string;
  outputs: Record<string, string>;
  summary: string;
}

export interface JobResult {
  id: string;
  result: 'success' | 'failure' | 'skipped';
  outputs: Record<string, string>;
  steps: StepResult[];
  workspace: string;
}

export interface WorkflowRun {
  jobs: Record<string, JobResult>;
  artifacts: ArtifactStore;
  /** Every step's log, summary and output, for leak scans. */
  text(): string;
  /** Why a failed job failed: its failed steps' logs. */
  failures(): string;
}

function binariesOf(pkg: string): string[] {
  let list: string;
  try {
    list = execFileSync('dpkg', ['-L', pkg], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    throw new Error(`the runner image package ${pkg} is not installed on this machine`);
  }
  return list.split('\n').filter((p) => /^\/(usr\/)?s?bin\/[^/]+$/.test(p));
}

function linkInto(bin: string, programs: string[]): void {
  for (const p of programs) {
    const to = join(bin, p.slice(p.lastIndexOf('/') + 1));
    if (!existsSync(to)) symlinkSync(p, to);
  }
}

/** A fresh runner's PATH: the image's programs, node, and shims for sudo and apt-get. */
function makeRunnerBin(dir: string, image: string[]): string {
  mkdirSync(dir, { recursive: true });
  for (const pkg of image) linkInto(dir, binariesOf(pkg));
  linkInto(dir, [process.execPath]);
  writeFileSync(join(dir, 'sudo'), '#!/bin/bash\nexec "$@"\n', { mode: 0o755 });
  // apt-get: "update" is a no-op; "install" links the package's programs into this runner's PATH.
  writeFileSync(
    join(dir, 'apt-get'),
    `#!/bin/bash
set -e
cmd=""; pkgs=()
for a in "$@"; do case "$a" in -*) ;; update|install) cmd="$a" ;; *) pkgs+=("$a") ;; esac; done
[ "$cmd" = install ] || exit 0
for p in "\${pkgs[@]}"; do
  dpkg-query -W -f='\${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || { echo "E: Unable to locate package $p (not installed on the test machine)" >&2; exit 100; }
  dpkg -L "$p" | grep -E '^/(usr/)?s?bin/[^/]+$' | while read -r f; do ln -sf "$f" "${dir}/$(basename "$f")" 2>/dev/null || true; done
  echo "Setting up $p ..."
done
`,
    { mode: 0o755 },
  );
  // dpkg-query/dpkg are needed by the apt-get shim itself.
  linkInto(dir, ['/usr/bin/dpkg-query', '/usr/bin/dpkg']);
  return dir;
}

const SIGNET_USES = /^([\w.-]+\/[\w.-]+)\/(actions\/[\w.-]+)@([\w./-]+)$/;
const THIRD_PARTY = /^actions\/(checkout|upload-artifact|download-artifact)@([0-9a-f]{40}|v\d[\w.]*)$/;

export async function runWorkflow(o: HarnessOptions): Promise<WorkflowRun> {
  const parsed = await parseWorkflowFile(o.workflow);
  if (parsed.errors.length) throw new Error(`workflow does not parse:\n${parsed.errors.join('\n')}`);
  const t = parsed.template;
  const rawJobs = mapGet(parsed.raw, 'jobs');
  const runId = o.runId ?? 4242;
  const ref = o.ref ?? 'refs/heads/main';
  const sha = execFileSync('git', ['rev-parse', ref.replace(/^refs\/heads\//, '')], {
    cwd: o.origin,
    encoding: 'utf8',
  }).trim();
  const artifacts: ArtifactStore = { dir: join(o.workDir, 'artifacts'), retention: new Map() };
  mkdirSync(artifacts.dir, { recursive: true });
  const secrets = { ...(o.secrets ?? {}), GITHUB_TOKEN: o.forge.token };
  const secretValues = Object.values(secrets).filter((v) => v.length >= 4);

  // inputs: the dispatch's declared inputs with their defaults (choice/boolean/string)
  const inputs: Record<string, unknown> = {};
  if (o.event.name === 'workflow_dispatch') {
    const declared = (t.events?.workflow_dispatch?.inputs ?? {}) as Record<
      string,
      { default?: unknown; required?: boolean }
    >;
    for (const [k, v] of Object.entries(declared)) if (v.default !== undefined) inputs[k] = v.default;
    for (const [k, v] of Object.entries(o.event.inputs ?? {})) {
      if (!(k in declared)) throw new Error(`workflow_dispatch input ${k} is not declared`);
      inputs[k] = v;
    }
    for (const [k, v] of Object.entries(declared))
      if (v.required && (inputs[k] === undefined || inputs[k] === ''))
        throw new Error(`input ${k} is required`);
  } else if (!t.events?.repository_dispatch)
    throw new Error('the workflow has no repository_dispatch trigger');

  const eventPayload =
    o.event.name === 'workflow_dispatch'
      ? { inputs, ref, repository: { full_name: o.repository } }
      : {
          action: o.event.type,
          client_payload: o.event.clientPayload,
          repository: { full_name: o.repository },
        };
  const eventPath = join(o.workDir, 'event.json');
  writeFileSync(eventPath, JSON.stringify(eventPayload));

  const github = {
    event_name: o.event.name,
    event: eventPayload,
    repository: o.repository,
    repository_owner: o.repository.split('/')[0],
    ref,
    ref_name: ref.replace(/^refs\/(heads|tags)\//, ''),
    sha,
    run_id: String(runId),
    run_number: String(o.runNumber ?? 7),
    run_attempt: '1',
    actor: 'release-engineer',
    server_url: o.forge.serverUrl,
    api_url: o.forge.apiUrl,
    token: o.forge.token,
    workspace: '',
    job: '',
  };
  const ctxBase = (): ExprContext => ({
    github: { ...github },
    inputs,
    secrets,
    vars: o.vars ?? {},
    env: {},
    needs: {},
    steps: {},
    runner: { os: 'Linux', arch: 'X64', name: 'harness', temp: '', tool_cache: '' },
    job: { status: 'success' },
    matrix: {},
    strategy: {},
  });

  const jobs: Record<string, JobResult> = {};
  const workflowEnvToken = t.env;
  const order = topo(t.jobs);
  for (const job of order) {
    const id: string = job.id.value;
    const needs: string[] = (job.needs ?? []).map((n: Token) => n.value);
    const ctx = ctxBase();
    for (const n of needs) ctx.needs[n] = { outputs: jobs[n]!.outputs, result: jobs[n]!.result };
    const upstream = closure(id, t.jobs).map((n) => jobs[n]!.result);
    const jobStatus: Status = { failed: upstream.some((r) => r === 'failure'), cancelled: false };
    // success() at job level: every job this one needs (transitively) succeeded
    const ok = !upstream.some((r) => r !== 'success');
    const cond = job.if?.expr ?? 'success()';
    const runIt = truthy(evaluate(cond, ctx, { ...jobStatus, blocked: !ok }));
    if (!runIt) {
      jobs[id] = { id, result: 'skipped', outputs: {}, steps: [], workspace: '' };
      continue;
    }
    jobs[id] = await runJob(id, job, mapGet(mapGet(rawJobs, id), 'steps'));
  }

  async function runJob(id: string, job: Token, rawSteps: Token): Promise<JobResult> {
    const root = join(o.workDir, 'jobs', id);
    const workspace = join(root, 'workspace');
    const temp = join(root, 'temp');
    const home = join(root, 'home');
    for (const d of [workspace, temp, home]) mkdirSync(d, { recursive: true });
    const bin = makeRunnerBin(join(root, 'bin'), o.image ?? RUNNER_IMAGE);
    const envFile = join(temp, '_env');
    const pathFile = join(temp, '_path');
    writeFileSync(envFile, '');
    writeFileSync(pathFile, '');
    const ctx = ctxBase();
    ctx.github['workspace'] = workspace;
    ctx.github['job'] = id;
    ctx.runner['temp'] = temp;
    ctx.runner['tool_cache'] = join(root, 'toolcache');
    for (const n of (job.needs ?? []).map((x: Token) => x.value as string))
      ctx.needs[n] = { outputs: jobs[n]!.outputs, result: jobs[n]!.result };
    const status: Status = { failed: false, cancelled: false };
    // workflow env, then job env, each evaluated in order
    for (const scope of [workflowEnvToken, job.env]) {
      if (!scope) continue;
      for (const kv of scope.map)
        ctx.env[tokenString(kv.key, ctx, status)] = tokenString(kv.value, ctx, status);
    }
    const runnerVars: Record<string, string> = {
      CI: 'true',
      HOME: home,
      LANG: 'C.UTF-8',
      TMPDIR: temp,
      GITHUB_ACTIONS: 'true',
      GITHUB_WORKSPACE: workspace,
      GITHUB_REPOSITORY: o.repository,
      GITHUB_REPOSITORY_OWNER: o.repository.split('/')[0]!,
      GITHUB_REF: ref,
      GITHUB_REF_NAME: github.ref_name,
      GITHUB_SHA: sha,
      GITHUB_RUN_ID: String(runId),
      GITHUB_RUN_NUMBER: github.run_number,
      GITHUB_RUN_ATTEMPT: '1',
      GITHUB_JOB: id,
      GITHUB_ACTOR: github.actor,
      GITHUB_EVENT_NAME: o.event.name,
      GITHUB_EVENT_PATH: eventPath,
      GITHUB_SERVER_URL: o.forge.serverUrl,
      GITHUB_API_URL: o.forge.apiUrl,
      GITHUB_ENV: envFile,
      GITHUB_PATH: pathFile,
      RUNNER_OS: 'Linux',
      RUNNER_ARCH: 'X64',
      RUNNER_TEMP: temp,
      RUNNER_TOOL_CACHE: ctx.runner['tool_cache']!,
      ...(o.forge.flavor === 'gitea' ? { GITEA_ACTIONS: 'true' } : {}),
      ...(o.runnerEnv ?? {}),
    };
    const steps: StepResult[] = [];
    const rawList: Token[] = rawSteps?.seq ?? [];
    for (let i = 0; i < job.steps.length; i++) {
      const step = job.steps[i];
      const raw = rawList[i];
      const stepId: string = step.id;
      const name = step.name ? tokenString(step.name, ctx, status) : stepId;
      const cond = step.if?.expr ?? 'success()';
      if (!truthy(evaluate(cond, ctx, status))) {
        steps.push({ id: stepId, name, outcome: 'skipped', log: '', outputs: {}, summary: '' });
        ctx.steps[stepId] = { outputs: {}, outcome: 'skipped', conclusion: 'skipped' };
        continue;
      }
      const outFile = join(temp, `_output_${i}`);
      const summaryFile = join(temp, `_summary_${i}`);
      writeFileSync(outFile, '');
      writeFileSync(summaryFile, '');
      const fromEnvFile = parseOutputFile(readFileSync(envFile, 'utf8'));
      const addedPath = readFileSync(pathFile, 'utf8').split('\n').filter(Boolean).reverse();
      ctx.env = { ...ctx.env, ...fromEnvFile };
      const stepEnv: Record<string, string> = {};
      if (step.env)
        for (const kv of step.env.map)
          stepEnv[tokenString(kv.key, ctx, status)] = tokenString(kv.value, ctx, status);
      const env: Record<string, string> = {
        ...runnerVars,
        ...ctx.env,
        ...stepEnv,
        PATH: [...addedPath, bin].join(':'),
        GITHUB_OUTPUT: outFile,
        GITHUB_STEP_SUMMARY: summaryFile,
      };
      const stepCtx: ExprContext = { ...ctx, env: { ...ctx.env, ...stepEnv } };
      let log = '';
      const append = (s: string) => {
        log += s;
      };
      let code = 0;
      try {
        const uses = step.uses ? tokenString(step.uses, stepCtx, status) : undefined;
        if (uses) {
          const withToken = mapGet(raw, 'with');
          const withValues: Record<string, string> = {};
          if (withToken)
            for (const kv of withToken.map)
              withValues[tokenString(kv.key, stepCtx, status)] = tokenString(kv.value, stepCtx, status);
          const io: StepIo = {
            with: withValues,
            env,
            workspace,
            log: append,
            interpolate: (text) =>
              text.replace(/\$\{\{([\s\S]*?)\}\}/g, (_, e: string) =>
                evaluate(e.trim(), stepCtx, status).coerceString(),
              ),
          };
          code = await runUses(uses, io);
        } else {
          const script = tokenString(step.run, stepCtx, status);
          const wd = mapGet(raw, 'working-directory');
          const shell = mapGet(raw, 'shell') ? tokenString(mapGet(raw, 'shell'), stepCtx, status) : 'bash';
          const cwd = wd ? resolve(workspace, tokenString(wd, stepCtx, status)) : workspace;
          code = await runScript(script, shell, cwd, env, join(temp, `_step_${i}.sh`), append);
        }
      } catch (e) {
        append(`##[error]${(e as Error).message}\n`);
        code = 1;
      }
      const outputs = parseOutputFile(readFileSync(outFile, 'utf8'));
      for (const [k, v] of Object.entries(outputs))
        if (secretValues.some((s) => v.includes(s))) {
          append(`Warning: Skip output '${k}' since it may contain secret.\n`);
          delete outputs[k];
        }
      const continueOnError = step['continue-on-error']
        ? truthy(evaluate(String(tokenValue(step['continue-on-error'], stepCtx, status)), stepCtx, status))
        : false;
      const outcome = code === 0 ? 'success' : 'failure';
      if (outcome === 'failure' && !continueOnError) status.failed = true;
      ctx.steps[stepId] = {
        outputs,
        outcome,
        conclusion: outcome === 'failure' && continueOnError ? 'success' : outcome,
      };
      steps.push({
        id: stepId,
        name,
        outcome,
        log: log
          .split('\n')
          .filter((l) => !l.startsWith('::add-mask::'))
          .join('\n'),
        outputs,
        summary: readFileSync(summaryFile, 'utf8'),
      });
    }
    const outputs: Record<string, string> = {};
    if (job.outputs)
      for (const kv of job.outputs.map) {
        const v = tokenString(kv.value, ctx, status);
        if (v === '' || secretValues.some((s) => v.includes(s))) continue;
        outputs[tokenString(kv.key, ctx, status)] = v;
      }
    return { id, result: status.failed ? 'failure' : 'success', outputs, steps, workspace };
  }

  async function runUses(uses: string, io: StepIo): Promise<number> {
    const third = THIRD_PARTY.exec(uses);
    if (third) {
      if (third[1] === 'checkout') await checkout(io, o.origin, ref, o.actionRepos);
      else if (third[1] === 'upload-artifact') uploadArtifact(io, artifacts);
      else downloadArtifact(io, artifacts);
      return 0;
    }
    const own = SIGNET_USES.exec(uses);
    if (own) {
      const repoDir = o.actionRepos[own[1]!];
      if (!repoDir) throw new Error(`action repository ${own[1]} is not available to the harness`);
      return (await runNodeAction(join(repoDir, own[2]!), io)).code;
    }
    if (uses.startsWith('./')) return (await runNodeAction(resolve(io.workspace, uses), io)).code;
    throw new Error(`uses: ${uses} is not modelled by the workflow harness`);
  }

  const all = () => Object.values(jobs).flatMap((j) => j.steps);
  return {
    jobs,
    artifacts,
    text: () =>
      all()
        .map((s) => `${s.log}\n${s.summary}\n${JSON.stringify(s.outputs)}`)
        .join('\n') + JSON.stringify(Object.values(jobs).map((j) => j.outputs)),
    failures: () =>
      Object.values(jobs)
        .filter((j) => j.result === 'failure')
        .map(
          (j) =>
            `job ${j.id}:\n${j.steps
              .filter((s) => s.outcome === 'failure')
              .map((s) => `--- ${s.name}\n${s.log}`)
              .join('\n')}`,
        )
        .join('\n'),
  };
}

function runScript(
  script: string,
  shell: string,
  cwd: string,
  env: Record<string, string>,
  file: string,
  log: (s: string) => void,
): Promise<number> {
  writeFileSync(file, script);
  const argv =
    shell === 'sh'
      ? ['sh', ['-e', file]]
      : shell === 'bash'
        ? ['bash', ['--noprofile', '--norc', '-eo', 'pipefail', file]]
        : undefined;
  if (!argv) throw new Error(`shell ${shell} is not modelled`);
  const [cmd, args] = argv as [string, string[]];
  return collect(cmd, args, { cwd, env }, log).then((r) => r.code);
}

/** Jobs in `needs` order (stable: file order among independent jobs). */
function topo(list: Token[]): Token[] {
  const byId = new Map(list.map((j) => [j.id.value as string, j]));
  const done = new Set<string>();
  const out: Token[] = [];
  const visit = (j: Token, path: string[]) => {
    const id = j.id.value as string;
    if (done.has(id)) return;
    if (path.includes(id)) throw new Error(`needs cycle: ${[...path, id].join(' → ')}`);
    for (const n of j.needs ?? []) visit(byId.get(n.value)!, [...path, id]);
    done.add(id);
    out.push(j);
  };
  for (const j of list) visit(j, []);
  return out;
}

/** Every job `id` needs, transitively. */
function closure(id: string, list: Token[]): string[] {
  const byId = new Map(list.map((j) => [j.id.value as string, j]));
  const seen = new Set<string>();
  const walk = (x: string) => {
    for (const n of byId.get(x)?.needs ?? [])
      if (!seen.has(n.value)) {
        seen.add(n.value);
        walk(n.value);
      }
  };
  walk(id);
  return [...seen];
}
