/**
 * `signet init`: a commented starter signet.config.yaml at the root of the git repository, and
 * the packaged workflows (release.yml, site-installers.yml) under .github/workflows/ or
 * .gitea/workflows/. Nothing is overwritten without `force`, and when anything would be, nothing
 * at all is written: every target is checked before the first write.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, sep } from 'node:path';
import { CONFIG_FILES, gitRootOf } from '../config/load.ts';
import { SignetError } from '../errors.ts';
import { ACTIONS_REPOSITORY, packagePath } from '../paths.ts';

export type InitForge = 'github' | 'gitea';

/** The packaged workflows a repository copies (ci.yml is Signet's own CI, not a template). */
export const INIT_WORKFLOWS = ['release.yml', 'site-installers.yml'] as const;

export interface InitOptions {
  cwd: string;
  forge?: InitForge;
  force?: boolean;
  /**
   * Where the workflows take Signet's actions from: `OWNER/REPO@REF`, or on Gitea/Forgejo a mirror
   * as `https://host/OWNER/REPO@REF`. Default `signet-release/signet@v1`.
   */
  actions?: string;
}

/** The `uses:` source of the shipped workflows. */
export const DEFAULT_ACTIONS = `${ACTIONS_REPOSITORY}@v1`;
const ACTIONS_SOURCE =
  /^(?:https?:\/\/[A-Za-z0-9.-]+(?::\d+)?\/)?[A-Za-z0-9_.-]+\/[A-Za-z0-9_.-]+@[A-Za-z0-9_./-]+$/;

/** The workflow text with every `uses: signet-release/signet/actions/<name>@v1` pointed at `actions`. */
export function withActionsSource(text: string, actions: string): string {
  if (!ACTIONS_SOURCE.test(actions))
    throw new SignetError(
      'E_USAGE',
      `--actions: expected OWNER/REPO@REF or https://HOST/OWNER/REPO@REF, got ${actions}`,
      {
        hint: `For example --actions ${DEFAULT_ACTIONS}, a fork (--actions my-org/signet@v1) or a Gitea mirror (--actions https://gitea.example.com/mirrors/signet@v1).`,
        details: { field: 'actions' },
      },
    );
  const at = actions.lastIndexOf('@');
  const repo = actions.slice(0, at);
  const ref = actions.slice(at + 1);
  const from = new RegExp(`uses: ${ACTIONS_REPOSITORY.replace('/', '\\/')}/actions/([\\w-]+)@v1\\b`, 'g');
  return text.replace(from, (_, name: string) => `uses: ${repo}/actions/${name}@${ref}`);
}

export interface InitFile {
  /** Path relative to the repository root. */
  path: string;
  kind: 'config' | 'workflow';
  /** An existing file was replaced (--force). */
  replaced: boolean;
}

export interface InitResult {
  root: string;
  forge: InitForge;
  files: InitFile[];
  /** What the `yaml-language-server` line of the config points at. */
  schema: string;
}

/** Where the config's editor line points: the packaged schema, relative when it is inside the repository. */
export function schemaReference(
  root: string,
  schemaFile = packagePath('schema', 'signet.config.schema.json'),
) {
  const rel = relative(root, schemaFile);
  return rel && !rel.startsWith('..') && !isAbsolute(rel) ? rel.split(sep).join('/') : schemaFile;
}

/** The starter config text with its schema line filled in. */
export function starterConfig(schema: string): string {
  const template = readFileSync(packagePath('templates', 'init', 'signet.config.yaml'), 'utf8');
  return template.replace('{{SCHEMA}}', schema);
}

export function runInit(o: InitOptions): InitResult {
  const forge = o.forge ?? 'github';
  const root = gitRootOf(o.cwd);
  if (!root)
    throw new SignetError('E_NOT_A_GIT_REPO', `not inside a git repository: ${o.cwd}`, {
      hint: 'Run `signet init` inside the repository of your agent (`git init` first for a new one), or pass --cwd <repo>.',
      details: { cwd: o.cwd },
    });
  const schema = schemaReference(root);
  const workflowDir = forge === 'gitea' ? '.gitea/workflows' : '.github/workflows';
  const writes: { path: string; kind: InitFile['kind']; text: string }[] = [
    { path: 'signet.config.yaml', kind: 'config', text: starterConfig(schema) },
    ...INIT_WORKFLOWS.map((name) => ({
      path: `${workflowDir}/${name}`,
      kind: 'workflow' as const,
      text: withActionsSource(
        readFileSync(packagePath('workflows', name), 'utf8'),
        o.actions ?? DEFAULT_ACTIONS,
      ),
    })),
  ];

  // Check every target first: a config in any of its forms counts as the config.
  const existing = [
    ...CONFIG_FILES.filter((f) => existsSync(join(root, f))),
    ...writes.filter((w) => w.kind === 'workflow' && existsSync(join(root, w.path))).map((w) => w.path),
  ];
  if (existing.length && !o.force)
    throw new SignetError('E_FILE_EXISTS', `already there: ${existing.join(', ')} (in ${root})`, {
      hint: 'Nothing was written. Re-run with --force to replace them, or move them away first.',
      details: { root, existing },
    });

  const files: InitFile[] = [];
  for (const w of writes) {
    const target = join(root, w.path);
    const replaced = existsSync(target);
    mkdirSync(dirname(target), { recursive: true });
    writeFileSync(target, w.text);
    files.push({ path: w.path, kind: w.kind, replaced });
  }
  return { root, forge, files, schema };
}
