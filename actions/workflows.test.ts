/**
 * The workflows, checked with GitHub's own parser (@actions/workflow-parser: schema, expressions,
 * job graph) and against Signet's rules: channel dispatch, minimal permissions, secrets only where
 * needed, a concurrency group, and every Signet action called with inputs it declares.
 */
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';

// The parser imports its JSON schema without an import attribute, which Node's ESM loader refuses;
// bundling it once with esbuild (which inlines the JSON) sidesteps that.
type Parser = typeof import('@actions/workflow-parser');
const bundled = join(mkdtempSync(join(tmpdir(), 'signet-wfparser-')), 'parser.mjs');
await build({
  stdin: {
    contents: "export * from '@actions/workflow-parser';",
    resolveDir: join(import.meta.dirname, '..'),
    loader: 'js',
  },
  bundle: true,
  platform: 'node',
  format: 'esm',
  outfile: bundled,
  logLevel: 'silent',
});
const { convertWorkflowTemplate, NoOperationTraceWriter, parseWorkflow } = (await import(
  pathToFileURL(bundled).href
)) as Parser;

const root = join(import.meta.dirname, '..');
const WORKFLOWS = ['release.yml', 'site-installers.yml', 'ci.yml'];

// biome-ignore lint/suspicious/noExplicitAny: parsed YAML
type Y = any;
const load = (f: string): Y => YAML.parse(readFileSync(join(root, 'workflows', f), 'utf8'));

async function parse(f: string) {
  const content = readFileSync(join(root, 'workflows', f), 'utf8');
  const r = parseWorkflow({ name: f, content }, new NoOperationTraceWriter());
  const parseErrors = r.context.errors.getErrors().map((e) => e.message);
  const template = r.value ? await convertWorkflowTemplate(r.context, r.value) : undefined;
  return { parseErrors, template };
}

describe('workflows parse with GitHub’s workflow parser', () => {
  for (const f of WORKFLOWS)
    it(f, async () => {
      const { parseErrors, template } = await parse(f);
      expect(parseErrors).toEqual([]);
      expect(template?.errors ?? []).toEqual([]);
      expect(template?.jobs.length).toBeGreaterThan(0);
    });

  it('the parser does catch a broken workflow (the check can fail)', async () => {
    const bad = readFileSync(join(root, 'workflows', 'release.yml'), 'utf8').replace(
      'runs-on: ubuntu-latest',
      'runs-on: [ubuntu-latest\n',
    );
    const r = parseWorkflow({ name: 'bad.yml', content: bad }, new NoOperationTraceWriter());
    const t = r.value ? await convertWorkflowTemplate(r.context, r.value) : undefined;
    expect(r.context.errors.getErrors().length + (t?.errors?.length ?? 0)).toBeGreaterThan(0);
    const r2 = parseWorkflow(
      {
        name: 'bad2.yml',
        content: 'on: push\njobs:\n  a:\n    runs-on: x\n    steps:\n      - run: echo ${{ nope( }}\n',
      },
      new NoOperationTraceWriter(),
    );
    expect(r2.context.errors.getErrors().length).toBeGreaterThan(0);
  });
});

describe('release.yml', () => {
  const wf = load('release.yml');
  it('dispatches with channel stable | beta (default stable) and can be called', () => {
    const ch = wf.on.workflow_dispatch.inputs.channel;
    expect(ch).toMatchObject({ type: 'choice', options: ['stable', 'beta'], default: 'stable' });
    expect(wf.on.workflow_call.inputs.channel.default).toBe('stable');
  });
  it('runs version → build → sign → installers (optional) → publish', () => {
    expect(Object.keys(wf.jobs)).toEqual(['version', 'build', 'sign', 'installers', 'publish']);
    expect(wf.jobs.build.needs).toBe('version');
    expect(wf.jobs.sign.needs).toEqual(['version', 'build']);
    expect(wf.jobs.installers.if).toMatch(/sites-file/);
    expect(wf.jobs.publish.needs).toEqual(['version', 'sign', 'installers']);
    const publish = wf.jobs.publish.steps.find((s: Y) => s.id === 'publish');
    expect(publish.with.channel).toContain('CHANNEL');
  });
  it('has a concurrency group that queues (never cancels) and no default permissions', () => {
    expect(wf.concurrency.group).toContain('github.repository');
    expect(wf.concurrency['cancel-in-progress']).toBe(false);
    expect(wf.permissions).toEqual({});
  });
  it('grants write only to the jobs that write, and secrets only to the jobs that sign', () => {
    for (const [name, job] of Object.entries<Y>(wf.jobs)) {
      const writes = Object.entries(job.permissions ?? {})
        .filter(([, v]) => v === 'write')
        .map(([k]) => k);
      expect(writes, name).toEqual(['version', 'publish'].includes(name) ? ['contents'] : []);
      const usesSecrets = YAML.stringify(job).includes('secrets.');
      expect(usesSecrets, name).toBe(['sign', 'installers'].includes(name));
    }
  });
});

describe('site-installers.yml', () => {
  const wf = load('site-installers.yml');
  it('is triggered by dispatch inputs or repository_dispatch', () => {
    expect(Object.keys(wf.on.workflow_dispatch.inputs)).toEqual([
      'release-tag',
      'agent-asset',
      'sites',
      'attach',
    ]);
    expect(wf.on.repository_dispatch.types).toEqual(['site-installers']);
  });
  it('never takes an enrollment key in clear: sites carry sealed keys, opened with a secret', () => {
    const text = readFileSync(join(root, 'workflows', 'site-installers.yml'), 'utf8');
    expect(text).not.toMatch(/enrollment[-_]?key:/i);
    const build = wf.jobs.build.steps.find((s: Y) => s.id === 'build');
    expect(build.with['seal-private-key']).toBe('${{ secrets.SIGNET_SEAL_PRIVATE_KEY }}');
    expect(wf.jobs.build.permissions).toEqual({ contents: 'read' });
    expect(wf.jobs.attach.permissions).toEqual({ contents: 'write' });
    expect(YAML.stringify(wf.jobs.attach)).not.toContain('secrets.');
  });
});

describe('every Signet action is called with declared inputs', () => {
  for (const f of WORKFLOWS) {
    it(f, () => {
      const wf = load(f);
      for (const [jobName, job] of Object.entries<Y>(wf.jobs)) {
        for (const step of job.steps ?? []) {
          const m = /^\.\/\.signet\/actions\/([\w-]+)$/.exec(step.uses ?? '');
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
      }
    });
  }
});
