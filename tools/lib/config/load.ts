import { existsSync, readFileSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import YAML from 'yaml';
import type { z } from 'zod';
import { SignetError } from '../errors.ts';
import { configSchema, type SignetConfig } from './schema.ts';

export const CONFIG_FILES = ['signet.config.yaml', 'signet.config.yml', 'signet.config.json'];

export interface LoadedConfig {
  config: SignetConfig;
  /** Absolute path of the file, or undefined when defaults were used. */
  path: string | undefined;
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
    path = CONFIG_FILES.map((f) => join(cwd, f)).find((p) => existsSync(p));
  }
  if (!path) return { config: parseConfig({}, 'defaults'), path: undefined };
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
  return { config: parseConfig(raw, path), path };
}
