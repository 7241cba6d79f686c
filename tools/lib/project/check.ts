/**
 * `signet check`: doctor for one repository. Is the config valid (every problem listed)? Does
 * `signing.defaultProfile` exist? Is every signing profile usable here — its files present, its
 * env:/file: references set (presence only: no value is ever printed)? Are the tools each
 * configured feature needs installed (`runDoctor`, and the installer tools of the build's
 * preflight)? Do the configured manifests and installer files exist? Nothing is modified.
 */
import { existsSync } from 'node:fs';
import { dirname, relative, resolve } from 'node:path';
import { gitRootOf, type LoadedConfig, loadConfig } from '../config/load.ts';
import type { SignetConfig } from '../config/schema.ts';
import { ERRORS, type ErrorCode, EXIT, SignetError, toSignetError } from '../errors.ts';
import type { Runner } from '../exec/runner.ts';
import { INSTALLER_TOOLS } from '../installers/build.ts';
import { detectManifests, loadManifests, toSpec } from '../manifests/index.ts';
import { isSecretRef, resolveSecret, type SecretRef } from '../secrets.ts';
import { runDoctor } from '../sign/doctor.ts';
import { backendOf, createSigner, type ResolvedProfile, resolveProfile } from '../sign/index.ts';

export type CheckStatus = 'ok' | 'warn' | 'fail';
export type CheckArea = 'config' | 'signing' | 'tools' | 'manifests' | 'installers';

export interface CheckRow {
  area: CheckArea;
  /** What was checked, e.g. `profile release: pkcs12` or `makensis`. */
  name: string;
  status: CheckStatus;
  detail: string;
  /** For a failure: the error code it amounts to, and the fix. */
  code?: ErrorCode;
  hint?: string;
}

export interface CheckReport {
  ok: boolean;
  /** The git root (undefined outside a repository). */
  root: string | undefined;
  /** The config file used (undefined: defaults). */
  config: string | undefined;
  checks: CheckRow[];
}

export interface CheckOptions {
  cwd: string;
  configPath?: string | undefined;
  env?: NodeJS.ProcessEnv;
  runner?: Runner;
}

const ok = (area: CheckArea, name: string, detail: string): CheckRow => ({
  area,
  name,
  status: 'ok',
  detail,
});
const warn = (area: CheckArea, name: string, detail: string): CheckRow => ({
  area,
  name,
  status: 'warn',
  detail,
});

function fail(area: CheckArea, name: string, e: unknown, hint?: string): CheckRow {
  const err = toSignetError(e);
  return { area, name, status: 'fail', detail: err.message, code: err.code, hint: hint ?? err.hint };
}

export async function runCheck(o: CheckOptions): Promise<CheckReport> {
  const env = o.env ?? process.env;
  const root = gitRootOf(o.cwd);
  const checks: CheckRow[] = [];
  const report = (config: string | undefined): CheckReport => ({
    ok: checks.every((c) => c.status !== 'fail'),
    root,
    config,
    checks,
  });

  let loaded: LoadedConfig;
  try {
    loaded = loadConfig(o.cwd, o.configPath);
  } catch (e) {
    const err = toSignetError(e);
    const problems = err.details['problems'];
    if (Array.isArray(problems))
      for (const p of problems as string[])
        checks.push({ ...fail('config', 'signet.config', err), detail: p });
    else checks.push(fail('config', 'signet.config', err));
    return report(typeof err.details['file'] === 'string' ? err.details['file'] : o.configPath);
  }
  if (!root)
    checks.push(
      fail(
        'config',
        'repository',
        new SignetError('E_NOT_A_GIT_REPO', `not inside a git repository: ${o.cwd}`),
      ),
    );
  const baseDir = loaded.path ? dirname(loaded.path) : o.cwd;
  const shown = (p: string) => (root && !relative(root, p).startsWith('..') ? relative(root, p) || '.' : p);
  checks.push(
    loaded.path
      ? ok('config', 'signet.config', `${shown(loaded.path)} is valid`)
      : warn(
          'config',
          'signet.config',
          'no config file up to the git root: defaults (`signet init` writes one)',
        ),
  );

  checks.push(...checkSigning(loaded.config, baseDir, env, shown));
  const tools = await checkTools(loaded, o.runner);
  checks.push(...tools);
  if (root) checks.push(...checkManifests(loaded.config, root));
  checks.push(...checkInstallerFiles(loaded.config, baseDir, shown));
  return report(loaded.path);
}

function checkSigning(
  config: SignetConfig,
  baseDir: string,
  env: NodeJS.ProcessEnv,
  shown: (p: string) => string,
): CheckRow[] {
  const rows: CheckRow[] = [];
  const names = Object.keys(config.signing.profiles);
  if (!names.length) return [warn('signing', 'profiles', 'no signing profiles: signing is not configured')];
  const def = config.signing.defaultProfile;
  rows.push(
    names.includes(def)
      ? ok('signing', 'defaultProfile', `"${def}" is defined`)
      : fail(
          'signing',
          'defaultProfile',
          new SignetError(
            'E_PROFILE_UNKNOWN',
            `signing.defaultProfile "${def}" is not among signing.profiles (${names.join(', ')})`,
          ),
          `Set signing.defaultProfile to one of: ${names.join(', ')}.`,
        ),
  );
  for (const name of names) {
    const label = `profile ${name}`;
    let profile: ResolvedProfile;
    try {
      profile = resolveProfile(config, { profile: name, baseDir, env });
      // the backend's own validation (required fields), then its key material references
      createSigner(config, { profile: name, baseDir, env }).prepare?.();
    } catch (e) {
      rows.push(fail('signing', label, e, devHint(config, name)));
      continue;
    }
    const problems: CheckRow[] = [];
    for (const f of profileFiles(profile)) {
      if (f.value.startsWith('env:') || f.value.startsWith('file:') || f.value.startsWith('pkcs11:'))
        continue;
      if (!existsSync(f.value))
        problems.push(
          fail(
            'signing',
            `${label}: ${f.field}`,
            new SignetError(f.code, `signing.profiles.${name}.${f.field}: ${shown(f.value)} does not exist`),
            devHint(config, name) ??
              (f.code === 'E_TOOL_MISSING' ? undefined : ERRORS.E_SIGN_KEY_MISSING.hint),
          ),
        );
    }
    for (const [field, ref] of profileSecrets(profile)) {
      try {
        resolveSecret(ref, `signing.profiles.${name}.${field}`, env); // presence; the value is dropped
      } catch (e) {
        problems.push(fail('signing', `${label}: ${field}`, e));
      }
    }
    rows.push(
      ...(problems.length
        ? problems
        : [
            ok(
              'signing',
              label,
              `${profile.backend}${profile.dev ? ' (dev)' : ''}: files and secrets present`,
            ),
          ]),
    );
  }
  return rows;
}

function devHint(config: SignetConfig, name: string): string | undefined {
  return config.signing.profiles[name]?.dev
    ? 'A dev profile: `signet dev-cert` writes its throwaway PKI (default .signet/dev-cert).'
    : undefined;
}

/** The files a resolved profile reads (absolute, or a reference left for `prepare`). */
function profileFiles(p: ResolvedProfile): { field: string; value: string; code: ErrorCode }[] {
  const out: { field: string; value: string; code: ErrorCode }[] = [];
  if (p.verify.caFile)
    out.push({ field: 'verify.caFile', value: p.verify.caFile, code: 'E_SIGN_KEY_MISSING' });
  if (p.verify.tsaCaFile)
    out.push({ field: 'verify.tsaCaFile', value: p.verify.tsaCaFile, code: 'E_SIGN_KEY_MISSING' });
  for (const f of backendOf(p, p.name).files(p)) if (f.value) out.push(f);
  return out; // resolveProfile made the paths absolute (against the config's folder)
}

function profileSecrets(p: ResolvedProfile): [string, SecretRef][] {
  return backendOf(p, p.name)
    .secrets(p)
    .filter((r): r is [string, SecretRef] => typeof r[1] === 'string' && isSecretRef(r[1]));
}

/** The tools doctor calls required for this config, plus the installer build's when installers are configured. */
async function checkTools(loaded: LoadedConfig, runner?: Runner): Promise<CheckRow[]> {
  const doctor = await runDoctor(loaded.config, runner);
  const installers = loaded.sections.includes('installers');
  const needed = doctor.checks.filter(
    (c) => c.required || (installers && (INSTALLER_TOOLS as readonly string[]).includes(c.name)),
  );
  return needed.map((c) =>
    c.ok
      ? ok('tools', c.name, `${c.version ?? c.path ?? 'present'} (${c.purpose})`)
      : {
          area: 'tools',
          name: c.name,
          status: 'fail',
          detail: `${c.problem ?? 'missing'} (needed for ${c.purpose})`,
          code: 'E_TOOL_MISSING',
          hint: c.install ?? ERRORS.E_TOOL_MISSING.hint,
        },
  );
}

function checkManifests(config: SignetConfig, root: string): CheckRow[] {
  const entries = [...config.version.manifests, ...config.version.components.flatMap((c) => c.manifests)];
  if (!entries.length) {
    const found = detectManifests(root);
    return [
      found.length
        ? ok(
            'manifests',
            'version.manifests',
            `none configured; detected ${found.map((f) => f.path).join(', ')}`,
          )
        : warn('manifests', 'version.manifests', 'none configured or detected: releases only tag'),
    ];
  }
  return entries.map((entry) => {
    const spec = toSpec(entry);
    try {
      const [m] = loadManifests(root, [spec]);
      return ok('manifests', spec.path, `${m?.type} ${m?.version}`);
    } catch (e) {
      return fail('manifests', spec.path, e);
    }
  });
}

function checkInstallerFiles(
  config: SignetConfig,
  baseDir: string,
  shown: (p: string) => string,
): CheckRow[] {
  const i = config.installers;
  const files: [string, string | undefined][] = [
    ['installers.nsisTemplate', i.nsisTemplate],
    ['installers.wixTemplate', i.wixTemplate],
    ['installers.product.icon', i.product.icon],
  ];
  return files
    .filter((f): f is [string, string] => f[1] !== undefined)
    .map(([field, value]) => {
      const path = resolve(baseDir, value);
      return existsSync(path)
        ? ok('installers', field, shown(path))
        : fail(
            'installers',
            field,
            new SignetError('E_FILE_NOT_FOUND', `${field}: ${shown(path)} does not exist`),
          );
    });
}

/** The one error a failed check amounts to: configuration problems (exit 2) before the environment's (4). */
export function checkError(report: CheckReport): SignetError | undefined {
  const failed = report.checks.filter((c) => c.status === 'fail');
  if (!failed.length) return undefined;
  const exitOf = (c: CheckRow) => EXIT[ERRORS[c.code ?? 'E_INTERNAL'].exit];
  const first =
    failed.find((c) => exitOf(c) === EXIT.usage) ??
    failed.find((c) => exitOf(c) === EXIT.environment) ??
    failed[0]!;
  const lines = failed.map((c) => `${c.area} ${c.name}: ${c.detail}`);
  return new SignetError(
    first.code ?? 'E_INTERNAL',
    `check: ${failed.length} problem${failed.length === 1 ? '' : 's'}:\n  - ${lines.join('\n  - ')}`,
    { hint: first.hint ?? ERRORS[first.code ?? 'E_INTERNAL'].hint, details: { ...report } },
  );
}

export function formatCheck(report: CheckReport): string {
  const mark = { ok: 'ok  ', warn: 'warn', fail: 'FAIL' } as const;
  const width = Math.min(40, Math.max(...report.checks.map((c) => c.name.length)));
  const lines = report.checks.map(
    (c) =>
      `${mark[c.status]}  ${c.area.padEnd(10)} ${c.name.padEnd(width)}  ${c.detail}${c.status === 'fail' && c.hint ? `\n${' '.repeat(18 + width)}→ ${c.hint}` : ''}`,
  );
  const failed = report.checks.filter((c) => c.status === 'fail').length;
  lines.push(
    failed
      ? `check: ${failed} problem${failed === 1 ? '' : 's'}`
      : 'check: everything this repository needs is in place',
  );
  return lines.join('\n');
}
