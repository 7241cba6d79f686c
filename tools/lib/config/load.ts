/**
 * Finding and loading signet.config.(yaml|yml|json). Without --config, the nearest config file
 * from the working directory up to the root of its git repository wins (outside a repository
 * only the working directory is looked at); no file means defaults.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import YAML from 'yaml';
import type { z } from 'zod';
import { SignetError } from '../errors.ts';
import { configSchema, type SignetConfig } from './schema.ts';

export const CONFIG_FILES = ['signet.config.yaml', 'signet.config.yml', 'signet.config.json'];

export interface LoadedConfig {
  config: SignetConfig;
  /** Absolute path of the file, or undefined when defaults were used. */
  path: string | undefined;
  /** The top-level sections the file itself sets (e.g. `installers`), before defaults. */
  sections: string[];
}

/** The root of the git repository holding `dir` (a folder with `.git`, a folder or a file), if any. */
export function gitRootOf(dir: string): string | undefined {
  for (let d = resolve(dir); ; d = dirname(d)) {
    if (existsSync(join(d, '.git'))) return d;
    if (dirname(d) === d) return undefined;
  }
}

/** The nearest config file from `cwd` up to its git root (only `cwd` outside a repository). */
export function findConfig(cwd: string): string | undefined {
  const start = resolve(cwd);
  const root = gitRootOf(start);
  for (let d = start; ; d = dirname(d)) {
    const found = CONFIG_FILES.map((f) => join(d, f)).find((p) => existsSync(p));
    if (found) return found;
    if (!root || d === root || dirname(d) === d) return undefined;
  }
}

/** Formats every zod issue as "field.path: message" (all problems, not the first). */
export function formatIssues(error: z.ZodError): string[] {
  return error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`);
}

export function parseConfig(raw: unknown, source: string): SignetConfig {
  const result = configSchema.safeParse(raw ?? {});
  if (!result.success) {
    const problems = formatIssues(result.error);
    throw new SignetError('E_CONFIG_INVALID', `${source} is invalid:\n  - ${problems.join('\n  - ')}`, {
      details: { file: source, problems },
    });
  }
  return result.data;
}

export function loadConfig(cwd: string, explicit?: string): LoadedConfig {
  let path: string | undefined;
  if (explicit) {
    path = isAbsolute(explicit) ? explicit : resolve(cwd, explicit);
    if (!existsSync(path)) throw new SignetError('E_CONFIG_NOT_FOUND', `config file not found: ${path}`);
  } else {
    path = findConfig(cwd);
  }
  if (!path) return { config: parseConfig({}, 'defaults'), path: undefined, sections: [] };
  const text = readFileSync(path, 'utf8');
  let raw: unknown;
  try {
    raw = path.endsWith('.json') ? JSON.parse(text) : YAML.parse(text);
  } catch (e) {
    throw new SignetError(
      'E_CONFIG_INVALID',
      `${path} is not valid ${path.endsWith('.json') ? 'JSON' : 'YAML'}: ${(e as Error).message}`,
      {
        details: { file: path },
      },
    );
  }
  const sections = raw && typeof raw === 'object' && !Array.isArray(raw) ? Object.keys(raw) : [];
  return { config: parseConfig(raw, path), path, sections };
}
