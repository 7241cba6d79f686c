/**
 * The glue every action shares (the core library never imports @actions/*): read the inputs once,
 * mask secrets before anything else runs, validate into typed settings (every bad input named),
 * turn a SignetError into a failed step with its code and hint, write outputs and a job summary.
 * Works the same on GitHub Actions and Gitea/Forgejo act_runner (same INPUT_*, GITHUB_OUTPUT,
 * GITHUB_STEP_SUMMARY protocol).
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import * as core from '@actions/core';
import type { z } from 'zod';
import { type LoadedConfig, loadConfig } from '../lib/config/load.ts';
import type { SignetConfig } from '../lib/config/schema.ts';
import { SignetError, toSignetError } from '../lib/errors.ts';
import { type LogSink, logger } from '../lib/log.ts';
import { redact, registerSecret } from '../lib/redact.ts';

/** Masks a value in the runner log and in everything Signet prints. */
export function mask(value: string | undefined): void {
  if (!value) return;
  core.setSecret(value);
  const trimmed = value.trim();
  if (trimmed && trimmed !== value) core.setSecret(trimmed);
  registerSecret(value);
}

/**
 * Reads the named inputs (masking the secret ones first), then validates them with `schema`.
 * Inputs are read with their action.yml names; the settings object uses the same keys.
 */
export function readSettings<S extends z.ZodType>(
  schema: S,
  names: readonly string[],
  secrets: readonly string[] = [],
): z.infer<S> {
  for (const name of secrets) mask(core.getInput(name));
  const raw: Record<string, string> = {};
  for (const name of names) {
    const v = core.getInput(name);
    if (v !== '') raw[name] = v;
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `input ${i.path.join('.') || '(all)'}: ${i.message}`);
    throw new SignetError('E_INPUT_INVALID', `invalid action inputs:\n  - ${problems.join('\n  - ')}`, {
      details: { problems },
    });
  }
  return parsed.data;
}

/** Masks every secret the config refers to (env:NAME values, small file:PATH contents). */
export function maskConfigSecrets(config: SignetConfig, env: NodeJS.ProcessEnv = process.env): void {
  const walk = (v: unknown): void => {
    if (typeof v === 'string') {
      const m = /^env:([A-Za-z_][A-Za-z0-9_]*)$/.exec(v);
      if (m) mask(env[m[1]!]);
      const f = /^file:(.+)$/.exec(v);
      if (f && existsSync(f[1]!) && statSync(f[1]!).size < 65_536)
        mask(readFileSync(f[1]!, 'utf8').replace(/\r?\n$/, ''));
    } else if (Array.isArray(v)) v.forEach(walk);
    else if (v && typeof v === 'object') Object.values(v).forEach(walk);
  };
  walk(config);
  for (const name of ['SIGNET_FORGE_TOKEN', 'GITHUB_TOKEN', 'GITEA_TOKEN', 'SIGNET_SEAL_PRIVATE_KEY'])
    mask(env[name]);
}

export function workspace(dir: string | undefined): string {
  return resolve(process.env['GITHUB_WORKSPACE'] ?? process.cwd(), dir ?? '.');
}

/**
 * The prologue every action shares: the typed settings (secret inputs masked first), the workspace
 * folder, and the config with every secret it names masked before anything else runs.
 */
export function startAction<S extends z.ZodObject>(
  schema: S,
  secrets: readonly string[] = [],
): { s: z.infer<S>; cwd: string; loaded: LoadedConfig } {
  const s = readSettings(schema, Object.keys(schema.shape), secrets);
  const common = s as { 'working-directory'?: string; config?: string };
  const cwd = workspace(common['working-directory']);
  const loaded = loadConfig(cwd, common.config);
  maskConfigSecrets(loaded.config);
  return { s, cwd, loaded };
}

export function setOutputs(
  outputs: Record<string, string | number | boolean | null | undefined | object>,
): void {
  for (const [k, v] of Object.entries(outputs)) {
    if (v === undefined || v === null) core.setOutput(k, '');
    else core.setOutput(k, typeof v === 'object' ? JSON.stringify(v) : String(v));
  }
}

export interface SummaryTable {
  title: string;
  rows: [string, string][];
  /** Extra table: header + rows. */
  table?: { header: string[]; rows: string[][] } | undefined;
  note?: string | undefined;
}

function mdCell(s: string): string {
  return redact(s).replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

/** Appends a markdown job summary (GITHUB_STEP_SUMMARY); silently skipped when the runner has none. */
export async function writeSummary(s: SummaryTable): Promise<void> {
  if (!process.env['GITHUB_STEP_SUMMARY']) return;
  const lines = [
    `### ${mdCell(s.title)}`,
    '',
    '| | |',
    '| --- | --- |',
    ...s.rows.map(([k, v]) => `| ${mdCell(k)} | ${mdCell(v)} |`),
  ];
  if (s.table) {
    lines.push(
      '',
      `| ${s.table.header.map(mdCell).join(' | ')} |`,
      `| ${s.table.header.map(() => '---').join(' | ')} |`,
    );
    for (const r of s.table.rows) lines.push(`| ${r.map(mdCell).join(' | ')} |`);
  }
  if (s.note) lines.push('', redact(s.note));
  await core.summary.addRaw(`${lines.join('\n')}\n\n`).write();
}

/** Runs an action body: logs through the runner, fails the step with the error's code and hint. */
export async function runAction(body: () => Promise<void>): Promise<void> {
  const sink: LogSink = {
    write: (line) => {
      if (line.startsWith('warn: ') || line.includes('warn: ')) core.warning(line.replace(/^.*?warn: /, ''));
      else core.info(line);
    },
  };
  logger.sink = sink;
  logger.color = false;
  if (process.env['RUNNER_DEBUG'] === '1') logger.level = 'debug';
  try {
    await body();
  } catch (e) {
    const err = toSignetError(e);
    core.setFailed(`[${err.code}] ${err.message}\nhint: ${err.hint}`);
    process.exitCode = err.exitCode || 1;
  }
}

/** `true`/`false` inputs as YAML 1.2 core booleans, like core.getBooleanInput. */
export const BOOL = ['true', 'True', 'TRUE', 'false', 'False', 'FALSE'] as const;
export function bool(v: string | undefined, fallback: boolean): boolean {
  if (v === undefined) return fallback;
  return /^true$/i.test(v);
}

/** Multiline or comma-separated list input. */
export function list(v: string | undefined): string[] {
  return (v ?? '')
    .split(/[\n,]/)
    .map((s) => s.trim())
    .filter(Boolean);
}
