/**
 * Template rendering for the NSIS and WiX sources. A template names variables as `{{NAME}}`;
 * the set of variables is closed and every value is checked against a narrow pattern right
 * before substitution, so no value can break out of its context (quotes, `$`, `<`, `&`, `%`,
 * newlines are never possible). An unknown or malformed `{{…}}` is an error, not left in place.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SignetError } from '../errors.ts';
import { packagePath } from '../paths.ts';

/** Values that may appear in a template, by kind. */
export const VALUE_PATTERNS = {
  /** Folder names: letters, digits, space, dot, dash, underscore. */
  segment: /^[A-Za-z0-9](?:[A-Za-z0-9 ._-]{0,62}[A-Za-z0-9_-])?$/,
  identifier: /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/,
  version: /^\d{1,5}\.\d{1,5}\.\d{1,5}(\.\d{1,5})?$/,
  number: /^\d{1,9}$/,
  hex: /^[0-9A-F]{4}$/,
  guid: /^[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}$/,
  /** Space-separated argument list. */
  args: /^[A-Za-z0-9._=:/-]+( [A-Za-z0-9._=:/-]+)*$/,
  /** Empty or a list of arguments. */
  argsOrEmpty: /^([A-Za-z0-9._=:/-]+( [A-Za-z0-9._=:/-]+)*)?$/,
  /** A relative file name of the work folder. */
  file: /^[A-Za-z0-9][A-Za-z0-9._/-]{0,127}$/,
  flag: /^[01]$/,
  /** Standard base64 (an encoded script Signet renders itself). */
  base64: /^[A-Za-z0-9+/]{4,16384}={0,2}$/,
  /** The Icon fragment of the WiX template: exactly Signet's constant, or empty. */
  wixIcon:
    /^$|^<Icon Id="product\.ico" SourceFile="payload\/product\.ico"\/><Property Id="ARPPRODUCTICON" Value="product\.ico"\/>$/,
  /** Fixed directives Signet writes itself (compression, icon). */
  directive: /^$|^[A-Za-z!][A-Za-z0-9 /"._\\-]*(\n[A-Za-z!][A-Za-z0-9 /"._\\-]*)*$/,
} as const;

export type ValueKind = keyof typeof VALUE_PATTERNS;

export interface TemplateVariable {
  kind: ValueKind;
  description: string;
}

export type TemplateValues = Record<string, string>;

const PLACEHOLDER = /\{\{\s*([^{}]*?)\s*\}\}/g;

/** Renders `template`; `spec` declares every variable the template may use. */
export function renderTemplate(
  template: string,
  values: TemplateValues,
  spec: Record<string, TemplateVariable>,
  source: string,
): string {
  for (const [name, value] of Object.entries(values)) {
    const v = spec[name];
    if (!v) throw new SignetError('E_INTERNAL', `template value ${name} has no declaration`);
    if (!VALUE_PATTERNS[v.kind].test(value))
      throw new SignetError('E_INPUT_INVALID', `value of ${name} is not a valid ${v.kind}`, {
        details: { variable: name, kind: v.kind },
      });
  }
  const problems: string[] = [];
  const out = template.replace(PLACEHOLDER, (whole, name: string) => {
    if (!(name in spec)) {
      problems.push(`unknown variable ${JSON.stringify(whole)}`);
      return whole;
    }
    const value = values[name];
    if (value === undefined) {
      problems.push(`variable ${name} has no value`);
      return whole;
    }
    return value;
  });
  if (/\{\{|\}\}/.test(out) && !problems.length) problems.push('unbalanced {{ or }}');
  if (problems.length)
    throw new SignetError('E_TEMPLATE_INVALID', `${source}: ${problems.join('; ')}`, {
      details: { template: source, problems },
    });
  return out;
}

const TEMPLATES_DIR = packagePath('templates');

export const BUILTIN_TEMPLATES = {
  nsis: join(TEMPLATES_DIR, 'nsis', 'site-installer.nsi'),
  wix: join(TEMPLATES_DIR, 'wix', 'site-installer.wxs'),
} as const;

export interface LoadedTemplate {
  path: string;
  text: string;
  sha256: string;
}

export function loadTemplate(path: string): LoadedTemplate {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    throw new SignetError('E_FILE_NOT_FOUND', `template not found: ${path}`);
  }
  return { path, text, sha256: createHash('sha256').update(text).digest('hex') };
}
