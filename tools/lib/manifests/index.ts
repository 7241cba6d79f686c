/**
 * Manifest updaters: string → string, changing only the version's bytes (Cargo.toml keeps its
 * comments and layout, package.json its formatting). Reading checks the version is semver.
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { parse as parseToml } from 'smol-toml';
import { SignetError } from '../errors.ts';
import type { ManifestType, ManifestVersion } from '../version/plan.ts';

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

function unparsable(spec: ManifestSpec, why: string): SignetError {
  return new SignetError('E_MANIFEST_UNPARSABLE', `${spec.path}: ${why}`, { details: { path: spec.path } });
}

const SEMVER =
  /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$/;

function checked(spec: ManifestSpec, v: unknown): string {
  if (typeof v !== 'string') throw unparsable(spec, 'no version field');
  if (!SEMVER.test(v)) throw unparsable(spec, `version "${v}" is not semver (MAJOR.MINOR.PATCH)`);
  return v;
}

// ---- Cargo.toml ----------------------------------------------------------------------------

interface Located {
  start: number;
  end: number;
  value: string;
}

/** Finds `version = "…"` directly in the table `[name]`; returns the span of the value. */
function findTomlVersion(text: string, table: string): Located | undefined {
  const lines = text.split(/(?<=\n)/);
  let offset = 0;
  let inTable = false;
  const header = new RegExp(`^\\s*\\[\\s*${table.replace(/\./g, '\\s*\\.\\s*')}\\s*\\]\\s*(#.*)?\\r?\\n?$`);
  for (const line of lines) {
    if (/^\s*\[/.test(line)) inTable = header.test(line);
    else if (inTable) {
      const m = /^(\s*version\s*=\s*)(["'])([^"'\r\n]*)\2/.exec(line);
      if (m) {
        const start = offset + m[1]!.length + 1;
        return { start, end: start + m[3]!.length, value: m[3]! };
      }
    }
    offset += line.length;
  }
  return undefined;
}

function cargoTable(spec: ManifestSpec, text: string): 'package' | 'workspace.package' {
  let doc: Record<string, unknown>;
  try {
    doc = parseToml(text) as Record<string, unknown>;
  } catch (e) {
    throw unparsable(spec, `invalid TOML: ${(e as Error).message.split('\n')[0]}`);
  }
  const pkg = doc['package'] as Record<string, unknown> | undefined;
  const ws = (doc['workspace'] as Record<string, unknown> | undefined)?.['package'] as
    | Record<string, unknown>
    | undefined;
  if (pkg && typeof pkg['version'] === 'string') return 'package';
  if (ws && typeof ws['version'] === 'string') return 'workspace.package';
  throw unparsable(spec, 'no [package] version or [workspace.package] version');
}

// ---- package.json --------------------------------------------------------------------------

/** Span of the string value of a top-level key of a JSON object text. */
function findTopLevelJsonString(text: string, key: string): Located | undefined {
  let depth = 0;
  let i = 0;
  const n = text.length;
  while (i < n) {
    const ch = text[i]!;
    if (ch === '"') {
      let j = i + 1;
      while (j < n && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      const str = text.slice(i + 1, j);
      if (depth === 1 && str === key) {
        let k = j + 1;
        while (/\s/.test(text[k] ?? '')) k++;
        if (text[k] === ':') {
          k++;
          while (/\s/.test(text[k] ?? '')) k++;
          if (text[k] === '"') {
            let e = k + 1;
            while (e < n && text[e] !== '"') e += text[e] === '\\' ? 2 : 1;
            return { start: k + 1, end: e, value: text.slice(k + 1, e) };
          }
          return undefined;
        }
      }
      i = j + 1;
      continue;
    }
    if (ch === '{' || ch === '[') depth++;
    else if (ch === '}' || ch === ']') depth--;
    i++;
  }
  return undefined;
}

function parseJson(spec: ManifestSpec, text: string): Record<string, unknown> {
  try {
    const v = JSON.parse(text) as unknown;
    if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error('not an object');
    return v as Record<string, unknown>;
  } catch (e) {
    throw unparsable(spec, `invalid JSON: ${(e as Error).message}`);
  }
}

// ---- public API ----------------------------------------------------------------------------

/** Reads the version a manifest text carries. */
export function readVersion(spec: ManifestSpec, text: string): string {
  switch (spec.type) {
    case 'cargo': {
      const table = cargoTable(spec, text);
      const loc = findTomlVersion(text, table);
      if (!loc) throw unparsable(spec, `cannot locate version in [${table}]`);
      return checked(spec, loc.value);
    }
    case 'npm':
    case 'npm-lock':
      return checked(spec, parseJson(spec, text)['version']);
    case 'plain': {
      const v = text.trim();
      if (!v) throw unparsable(spec, 'the file is empty');
      return checked(spec, v);
    }
    case 'regex': {
      const m = new RegExp(spec.pattern!, 'm').exec(text);
      if (!m || m[1] === undefined) throw unparsable(spec, `pattern ${spec.pattern} does not match`);
      return checked(spec, m[1]);
    }
  }
}

/** Returns the text with the version replaced; every other byte stays as it was. */
export function writeVersion(spec: ManifestSpec, text: string, version: string): string {
  const splice = (loc: Located) => text.slice(0, loc.start) + version + text.slice(loc.end);
  switch (spec.type) {
    case 'cargo': {
      const loc = findTomlVersion(text, cargoTable(spec, text));
      if (!loc) throw unparsable(spec, 'cannot locate version');
      return splice(loc);
    }
    case 'npm': {
      parseJson(spec, text);
      const loc = findTopLevelJsonString(text, 'version');
      if (!loc) throw unparsable(spec, 'no top-level "version" string');
      return splice(loc);
    }
    case 'npm-lock': {
      const doc = parseJson(spec, text);
      doc['version'] = version;
      const pkgs = doc['packages'] as Record<string, Record<string, unknown>> | undefined;
      if (pkgs?.['']) pkgs['']['version'] = version;
      const indent = /^\{\r?\n([ \t]+)"/.exec(text)?.[1] ?? '  ';
      const eol = text.includes('\r\n') ? '\r\n' : '\n';
      let out = JSON.stringify(doc, null, indent);
      if (eol !== '\n') out = out.replace(/\n/g, eol);
      return /\r?\n$/.test(text) ? out + eol : out;
    }
    case 'plain': {
      const lead = /^\s*/.exec(text)![0];
      const trail = /\s*$/.exec(text)![0];
      return lead + version + trail;
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

/** Reads manifests from disk (paths relative to root). Missing files are a coded error. */
export function loadManifests(root: string, specs: readonly ManifestSpec[]): LoadedManifest[] {
  return specs.map((spec) => {
    const abs = join(root, spec.path);
    if (!existsSync(abs)) {
      throw new SignetError('E_MANIFEST_MISSING', `manifest not found: ${spec.path}`, {
        details: { path: spec.path },
      });
    }
    const text = readFileSync(abs, 'utf8');
    return { path: spec.path, type: spec.type, version: readVersion(spec, text), spec, text };
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

/**
 * Cargo.lock follows Cargo.toml: every `[[package]]` without a `source` (a workspace or path
 * package) whose version is `from` gets `to`; registry and git packages are never touched, and
 * every other byte stays. Returns the text unchanged when nothing matches.
 */
export function updateCargoLock(text: string, from: string, to: string): string {
  const blocks = text.split(/(?=^\[\[package\]\][ \t]*\r?$)/m);
  return blocks
    .map((block) => {
      if (!block.startsWith('[[package]]')) return block;
      if (/^source\s*=/m.test(block)) return block;
      return block.replace(/^(version\s*=\s*")([^"]*)(")/m, (m, a: string, v: string, b: string) =>
        v === from ? `${a}${to}${b}` : m,
      );
    })
    .join('');
}

/** The Cargo.lock next to a Cargo.toml, or at the repository root (a workspace's lock). */
export function cargoLockFor(root: string, cargoToml: string): string | undefined {
  const dir = dirname(cargoToml);
  for (const p of [dir === '.' ? 'Cargo.lock' : `${dir}/Cargo.lock`, 'Cargo.lock']) {
    if (existsSync(join(root, p))) return p;
  }
  return undefined;
}
