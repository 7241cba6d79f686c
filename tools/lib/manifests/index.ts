/**
 * Manifest updaters: string → string, changing only the version's bytes (Cargo.toml keeps its
 * comments and layout, package.json its formatting), through real parsers (cargo.ts, npm.ts).
 * Reading checks the version is semver.
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { isSignetError, SignetError } from '../errors.ts';
import type { ManifestType, ManifestVersion } from '../version/plan.ts';
import { cargoVersion, TomlError } from './cargo.ts';
import { JsonError, parseJsonObject, writePackageJson, writePackageLock } from './npm.ts';

export { cargoPackageNames, updateCargoLock } from './cargo.ts';

export interface ManifestSpec {
  path: string;
  type: ManifestType;
  /** For type regex: a pattern whose first group is the version. */
  pattern?: string | undefined;
}

export type ManifestConfigEntry =
  | string
  | { path: string; type?: 'cargo' | 'npm' | 'plain' | 'regex'; pattern?: string };

export function detectType(path: string): ManifestType {
  const name = basename(path);
  if (name === 'Cargo.toml') return 'cargo';
  if (name === 'package-lock.json' || name === 'npm-shrinkwrap.json') return 'npm-lock';
  if (name.endsWith('.json')) return 'npm';
  return 'plain';
}

export function toSpec(entry: ManifestConfigEntry): ManifestSpec {
  if (typeof entry === 'string') return { path: entry, type: detectType(entry) };
  const type = entry.type ?? detectType(entry.path);
  if (type === 'regex' && !entry.pattern) {
    throw new SignetError('E_CONFIG_INVALID', `manifest ${entry.path}: type regex needs a pattern`, {
      details: { field: 'version.manifests.pattern' },
    });
  }
  return { path: entry.path, type, pattern: entry.pattern };
}

function unparsable(spec: ManifestSpec, why: string, missingVersion = false): SignetError {
  return new SignetError('E_MANIFEST_UNPARSABLE', `${spec.path}: ${why}`, {
    details: { path: spec.path, ...(missingVersion ? { missingVersion } : {}) },
  });
}

const SEMVER =
  /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$/;

function checked(spec: ManifestSpec, v: unknown): string {
  if (v === undefined) throw unparsable(spec, 'no version field', true);
  if (typeof v !== 'string') throw unparsable(spec, 'the version field is not a string');
  if (!SEMVER.test(v)) throw unparsable(spec, `version "${v}" is not semver (MAJOR.MINOR.PATCH)`);
  return v;
}

// ---- public API ----------------------------------------------------------------------------

/** Runs a parser step, turning its syntax error into E_MANIFEST_UNPARSABLE. */
function parsed<T>(spec: ManifestSpec, f: () => T): T {
  try {
    return f();
  } catch (e) {
    if (e instanceof TomlError || e instanceof JsonError) throw unparsable(spec, e.message);
    throw e;
  }
}

function cargo(spec: ManifestSpec, text: string) {
  const v = parsed(spec, () => cargoVersion(text));
  if (!v) throw unparsable(spec, 'no [package] version or [workspace.package] version');
  return v;
}

/** Reads the version a manifest text carries. */
export function readVersion(spec: ManifestSpec, text: string): string {
  switch (spec.type) {
    case 'cargo': {
      const v = cargo(spec, text);
      if (!v.span) throw unparsable(spec, `no version field in [${v.table}]`, true);
      return checked(spec, v.span.value);
    }
    case 'npm':
    case 'npm-lock':
      return checked(spec, parsed(spec, () => parseJsonObject(text))['version']);
    case 'plain': {
      const v = text.trim();
      if (!v) throw unparsable(spec, 'the file is empty', true);
      return checked(spec, v);
    }
    case 'regex': {
      const m = new RegExp(spec.pattern!, 'm').exec(text);
      if (!m || m[1] === undefined) throw unparsable(spec, `pattern ${spec.pattern} does not match`);
      return checked(spec, m[1]);
    }
  }
}

/**
 * Returns the text with the version replaced (or, for Cargo.toml and package.json without one,
 * added); every other byte stays as it was.
 */
export function writeVersion(spec: ManifestSpec, text: string, version: string): string {
  switch (spec.type) {
    case 'cargo': {
      const v = cargo(spec, text);
      if (v.span) return text.slice(0, v.span.start) + version + text.slice(v.span.end);
      if (v.insertAt === undefined) throw unparsable(spec, `cannot place a version in [${v.table}]`);
      const eol = text.includes('\r\n') ? '\r\n' : '\n';
      const before = text.slice(0, v.insertAt);
      const sep = before.endsWith('\n') || before === '' ? '' : eol;
      return `${before}${sep}version = "${version}"${eol}${text.slice(v.insertAt)}`;
    }
    case 'npm':
      return parsed(spec, () => writePackageJson(text, version));
    case 'npm-lock':
      return parsed(spec, () => writePackageLock(text, version));
    case 'plain': {
      const lead = /^\s*/.exec(text)![0];
      const trail = /\s*$/.exec(text)![0];
      return text.trim() === '' ? `${version}\n` : lead + version + trail;
    }
    case 'regex': {
      const m = new RegExp(spec.pattern!, 'md').exec(text);
      const span = m?.indices?.[1];
      if (!m || !span) throw unparsable(spec, `pattern ${spec.pattern} does not match`);
      return text.slice(0, span[0]) + version + text.slice(span[1]);
    }
  }
}

export interface LoadedManifest extends ManifestVersion {
  spec: ManifestSpec;
  text: string;
}

/**
 * Reads manifests from disk (paths relative to root). Missing files are a coded error. A file
 * whose version cannot be read is E_MANIFEST_UNPARSABLE, or with `tolerant` a manifest with
 * `version: null` and the problem (the planner decides whether it matters).
 */
export function loadManifests(
  root: string,
  specs: readonly ManifestSpec[],
  options: { tolerant?: boolean } = {},
): LoadedManifest[] {
  return specs.map((spec) => {
    const abs = join(root, spec.path);
    if (!existsSync(abs)) {
      throw new SignetError('E_MANIFEST_MISSING', `manifest not found: ${spec.path}`, {
        details: { path: spec.path },
      });
    }
    const text = readFileSync(abs, 'utf8');
    try {
      return { path: spec.path, type: spec.type, version: readVersion(spec, text), spec, text };
    } catch (e) {
      if (!options.tolerant || !isSignetError(e) || e.code !== 'E_MANIFEST_UNPARSABLE') throw e;
      const missing = e.details['missingVersion'] === true;
      return {
        path: spec.path,
        type: spec.type,
        version: null,
        problem: { message: e.message, missingVersion: missing },
        spec,
        text,
      };
    }
  });
}

/** When nothing is configured: the first of Cargo.toml, package.json, VERSION at the root. */
export function detectManifests(root: string): ManifestSpec[] {
  for (const name of ['Cargo.toml', 'package.json', 'VERSION']) {
    if (existsSync(join(root, name))) return [{ path: name, type: detectType(name) }];
  }
  return [];
}

/** Adds package-lock.json / npm-shrinkwrap.json next to every package.json that has one. */
export function withLockfiles(root: string, specs: readonly ManifestSpec[]): ManifestSpec[] {
  const out: ManifestSpec[] = [];
  const seen = new Set(specs.map((s) => s.path));
  for (const s of specs) {
    out.push(s);
    if (s.type !== 'npm' || basename(s.path) !== 'package.json') continue;
    for (const lock of ['package-lock.json', 'npm-shrinkwrap.json']) {
      const p = dirname(s.path) === '.' ? lock : `${dirname(s.path)}/${lock}`;
      if (!seen.has(p) && existsSync(join(root, p))) {
        seen.add(p);
        out.push({ path: p, type: 'npm-lock' });
      }
    }
  }
  return out;
}

/** The Cargo.lock next to a Cargo.toml, or at the repository root (a workspace's lock). */
export function cargoLockFor(root: string, cargoToml: string): string | undefined {
  const dir = dirname(cargoToml);
  for (const p of [dir === '.' ? 'Cargo.lock' : `${dir}/Cargo.lock`, 'Cargo.lock']) {
    if (existsSync(join(root, p))) return p;
  }
  return undefined;
}
