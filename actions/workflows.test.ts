/**
 * The workflows, checked with GitHub's own parser (@actions/workflow-parser: schema, expressions,
 * job graph) and against Signet's rules: channel dispatch, minimal permissions, secrets only where
 * needed, actions referenced the way users reference them (Signet's at signet-release/signet@v1,
 * third-party ones pinned by commit SHA on node24 releases), every Signet action called with the
 * inputs it declares, the tools each job needs installed, and per-site installers never sent to a
 * release. test/e2e/workflows-run.test.ts executes them.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { parseWorkflowText } from '../test/helpers/workflow-parser.ts';
import { INSTALLER_TOOLS } from '../tools/lib/installers/build.ts';
import { ACTIONS_REPOSITORY } from '../tools/lib/paths.ts';

const root = join(import.meta.dirname, '..');
const WORKFLOWS = ['release.yml', 'site-installers.yml', 'ci.yml'];
const SHIPPED = ['release.yml', 'site-installers.yml'];

// biome-ignore lint/suspicious/noExplicitAny: parsed YAML
type Y = any;
const text = (f: string) => readFileSync(join(root, 'workflows', f), 'utf8');
const load = (f: string): Y => YAML.parse(text(f));
const steps = (wf: Y): [string, Y][] =>
  Object.entries<Y>(wf.jobs).flatMap(([name, job]) =>
    (job.steps ?? []).map((s: Y) => [name, s] as [string, Y]),
  );

/** The Debian package that holds a program on this machine (dpkg -S), e.g. msiextract → msitools. */
function packageOf(program: string): string {
  const path = execFileSync('bash', ['-c', `command -v ${program}`], { encoding: 'utf8' }).trim();
  return execFileSync('dpkg', ['-S', path], { encoding: 'utf8' }).split(':')[0]!.trim();
}

describe('workflows parse with GitHub’s workflow parser', () => {
  for (const f of WORKFLOWS)
    it(f, async () => {
      const { errors, template } = await parseWorkflowText(f, text(f));
      expect(errors).toEqual([]);
      expect(template?.jobs.length).toBeGreaterThan(0);
    });

  it('the parser does catch a broken workflow (the check can fail)', async () => {
    const bad = text('release.yml').replace('runs-on: ubuntu-latest', 'runs-on: [ubuntu-latest\n');
    expect((await parseWorkflowText('bad.yml', bad)).errors.length).toBeGreaterThan(0);
    const r2 = await parseWorkflowText(
      'bad2.yml',
      'on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - run: echo ${{ nope( }}\n',
    );
    expect(r2.errors.length).toBeGreaterThan(0);
  });
});

describe('actions are referenced the way users reference them', () => {
  for (const f of SHIPPED)
    it(`${f}: Signet's actions at ${ACTIONS_REPOSITORY}@v1, third-party actions pinned by SHA on node24`, () => {
      const lines = text(f).split('\n');
      const uses = lines.filter((l) => /^\s*(- )?uses:/.test(l));
      expect(uses.length).toBeGreaterThan(0);
      for (const line of uses) {
        const ref = /uses:\s*(\S+)/.exec(line)![1]!;
        if (ref.startsWith(`${ACTIONS_REPOSITORY}/`)) {
          expect(ref, line).toMatch(new RegExp(`^${ACTIONS_REPOSITORY}/actions/[\\w-]+@v1$`));
          continue;
        }
        // owner/repo@<40 hex> # vX.Y.Z
        const m =
          /^(actions\/(?:checkout|upload-artifact|download-artifact))@([0-9a-f]{40})\s+#\s+(v\d+\.\d+\.\d+)$/.exec(
            line
              .trim()
              .replace(/^- /, '')
              .replace(/^uses:\s*/, ''),
          );
        expect(m, `pinned by commit SHA with its version in a comment: ${line.trim()}`).not.toBeNull();
        const major = Number(m![3]!.slice(1).split('.')[0]);
        // the node24 releases: checkout ≥ v5, upload-artifact ≥ v6, download-artifact ≥ v7
        const min = { 'actions/checkout': 5, 'actions/upload-artifact': 6, 'actions/download-artifact': 7 }[
          m![1]!
        ]!;
        expect(major, line).toBeGreaterThanOrEqual(min);
      }
      // one SHA per action and version across the file
      const pins = new Map<string, string>();
      for (const line of uses) {
        const m = /uses:\s*(actions\/[\w-]+)@([0-9a-f]{40})/.exec(line);
        if (!m) continue;
        expect(pins.get(m[1]!) ?? m[2], `${m[1]} pinned to two commits`).toBe(m[2]);
        pins.set(m[1]!, m[2]!);
      }
    });

  it('no workflow checks Signet out into the workspace (its .signet/ folder belongs to the project)', () => {
    for (const f of SHIPPED) {
      expect(text(f)).not.toMatch(/path:\s*\.signet\b/);
      expect(text(f)).not.toMatch(/uses:\s*\.\/\.signet\//);
    }
  });
});

describe('release.yml', () => {
  const wf = load('release.yml');
  it('dispatches with channel stable | beta (default stable) and can be called', () => {
    const ch = wf.on.workflow_dispatch.inputs.channel;
    expect(ch).toMatchObject({ type: 'choice', options: ['stable', 'beta'], default: 'stable' });
    expect(wf.on.workflow_call.inputs.channel.default).toBe('stable');
  });
  it('runs version → build → sign → publish, and builds no per-site installer', () => {
    expect(Object.keys(wf.jobs)).toEqual(['version', 'build', 'sign', 'publish']);
    expect(wf.jobs.build.needs).toBe('version');
    expect(wf.jobs.sign.needs).toEqual(['version', 'build']);
    expect(wf.jobs.publish.needs).toEqual(['version', 'sign']);
    expect(text('release.yml')).not.toMatch(/site-installers@|installers\/\*/);
    const download = wf.jobs.publish.steps.find((s: Y) =>
      String(s.uses).startsWith('actions/download-artifact'),
    );
    expect(download.with).toEqual({ name: 'agent-signed', path: 'release' });
    const publish = wf.jobs.publish.steps.find((s: Y) => s.id === 'publish');
    expect(publish.with.channel).toContain('CHANNEL');
  });
  it('the sign step gets the key material the profile names (env:SIGNET_SIGN_PFX_BASE64), nothing decoded by hand', () => {
    const sign = wf.jobs.sign.steps.find((s: Y) => s.id === 'sign');
    expect(sign.env).toEqual({
      SIGNET_SIGN_PFX_BASE64: '${{ secrets.SIGNET_SIGN_PFX_BASE64 }}',
      SIGNET_SIGN_PASSWORD: '${{ secrets.SIGNET_SIGN_PASSWORD }}',
    });
    expect(text('release.yml')).not.toMatch(/base64 -d|SIGNET_SIGN_PFX=/);
  });
  it('has a concurrency group that queues (never cancels) and no default permissions', () => {
    expect(wf.concurrency.group).toContain('github.repository');
    expect(wf.concurrency['cancel-in-progress']).toBe(false);
    expect(wf.permissions).toEqual({});
  });
  it('grants write only to the jobs that write, and secrets only to the job that signs', () => {
    for (const [name, job] of Object.entries<Y>(wf.jobs)) {
      const writes = Object.entries(job.permissions ?? {})
        .filter(([, v]) => v === 'write')
        .map(([k]) => k);
      expect(writes, name).toEqual(['version', 'publish'].includes(name) ? ['contents'] : []);
      expect(YAML.stringify(job).includes('secrets.'), name).toBe(name === 'sign');
    }
  });
});

describe('site-installers.yml', () => {
  const wf = load('site-installers.yml');
  it('is triggered by dispatch inputs (with a request id) or repository_dispatch, and names its run by the request id', () => {
    expect(wf.on.workflow_dispatch.inputs['request-id'].required).toBe(true);
    expect(wf.on.repository_dispatch.types).toEqual(['site-installers']);
    expect(wf['run-name']).toContain('inputs.request-id');
    expect(wf['run-name']).toContain('client_payload.request_id');
  });
  it('never drops a dispatch: no concurrency group', () => {
    expect(wf.concurrency).toBeUndefined();
    for (const job of Object.values<Y>(wf.jobs)) expect(job.concurrency).toBeUndefined();
  });
  it('never sends installers to a release: no publish step, no write permission', () => {
    for (const [job, step] of steps(wf)) expect(String(step.uses), job).not.toMatch(/actions\/publish@/);
    for (const job of Object.values<Y>(wf.jobs)) expect(job.permissions).toEqual({ contents: 'read' });
    const artifact = steps(wf).find(([, s]) => String(s.uses).startsWith('actions/upload-artifact'))![1];
    expect(artifact.with['retention-days']).toBe(1);
    expect(artifact.if).toContain("'artifact'");
  });
  it('never takes an enrollment key or the callback token in clear', () => {
    expect(text('site-installers.yml')).not.toMatch(/enrollment[-_]?key:/i);
    const build = wf.jobs.build.steps.find((s: Y) => s.id === 'build');
    expect(build.with['seal-private-key']).toBe('${{ secrets.SIGNET_SEAL_PRIVATE_KEY }}');
    for (const [, s] of steps(wf).filter(([, s]) => String(s.uses).includes('/actions/deliver@')))
      expect(s.with['sealed-token']).toMatch(/^file:/);
  });
});

describe('every job installs the tools its Signet steps need', () => {
  const needs: Record<string, string[]> = {
    sign: ['osslsigncode'],
    publish: ['osslsigncode'],
    'site-installers': ['osslsigncode', ...INSTALLER_TOOLS],
  };
  for (const f of SHIPPED)
    it(f, () => {
      const wf = load(f);
      for (const [jobName, job] of Object.entries<Y>(wf.jobs)) {
        const installed = (job.steps ?? [])
          .map((s: Y) => /apt-get install ([^\n&|;]+)/.exec(s.run ?? '')?.[1] ?? '')
          .join(' ')
          .split(/\s+/)
          .filter((w: string) => w && !w.startsWith('-'));
        for (const step of job.steps ?? []) {
          const m = new RegExp(`^${ACTIONS_REPOSITORY}/actions/([\\w-]+)@`).exec(step.uses ?? '');
          for (const program of m ? (needs[m[1]!] ?? []) : [])
            expect(installed, `${jobName} runs ${m![1]} which needs ${program}`).toContain(
              packageOf(program),
            );
        }
      }
    });
});

describe('every Signet action is called with declared inputs', () => {
  for (const f of WORKFLOWS) {
    it(f, () => {
      const wf = load(f);
      for (const [jobName, step] of steps(wf)) {
        const m = new RegExp(`^${ACTIONS_REPOSITORY}/actions/([\\w-]+)@`).exec(step.uses ?? '');
        if (!m) continue;
        const dir = join(root, 'actions', m[1]!);
        expect(existsSync(join(dir, 'action.yml')), `${jobName}: ${step.uses}`).toBe(true);
        const action = YAML.parse(readFileSync(join(dir, 'action.yml'), 'utf8'));
        for (const key of Object.keys(step.with ?? {}))
          expect(Object.keys(action.inputs), `${jobName}.${m[1]}.${key}`).toContain(key);
        for (const [name, input] of Object.entries<Y>(action.inputs))
          if (input.required)
            expect(step.with ?? {}, `${jobName}.${m[1]} needs ${name}`).toHaveProperty(name);
      }
    });
  }
});
