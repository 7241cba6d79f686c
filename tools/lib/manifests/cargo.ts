/**
 * Cargo.toml and Cargo.lock, through a real TOML parser (toml-eslint-parser: a full TOML 1.0 AST
 * with source ranges). Edits splice the byte range of one string value, so comments, layout and
 * every other byte stay; a `version = "9.9.9"` inside a multi-line string or another table is
 * never taken for the package version.
 */
import { globSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { AST } from 'toml-eslint-parser';
import { parseTOML } from 'toml-eslint-parser';

export class TomlError extends Error {}

export interface StringSpan {
  /** Range of the string's content (inside the quotes). */
  start: number;
  end: number;
  value: string;
}

function parseTomlAst(text: string): AST.TOMLProgram {
  try {
    return parseTOML(text);
  } catch (e) {
    const err = e as Error & { lineNumber?: number; column?: number };
    const at = err.lineNumber ? ` (line ${err.lineNumber}, column ${err.column})` : '';
    throw new TomlError(`invalid TOML: ${err.message.split('\n')[0]}${at}`);
  }
}

function keyName(k: AST.TOMLBare | AST.TOMLQuoted): string {
  return k.type === 'TOMLBare' ? k.name : k.value;
}

interface Entry {
  path: (string | number)[];
  node: AST.TOMLKeyValue;
  table: AST.TOMLTable | undefined;
}

/** Every key/value of the document with its full key path (tables and inline tables resolved). */
function entries(ast: AST.TOMLProgram): Entry[] {
  const out: Entry[] = [];
  const visit = (kv: AST.TOMLKeyValue, prefix: (string | number)[], table: AST.TOMLTable | undefined) => {
    const path = [...prefix, ...kv.key.keys.map(keyName)];
    out.push({ path, node: kv, table });
    if (kv.value.type === 'TOMLInlineTable') for (const inner of kv.value.body) visit(inner, path, table);
  };
  for (const item of ast.body[0]?.body ?? []) {
    if (item.type === 'TOMLKeyValue') visit(item, [], undefined);
    else for (const kv of item.body) visit(kv, item.resolvedKey, item);
  }
  return out;
}

function samePath(a: readonly (string | number)[], b: readonly (string | number)[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** The content span of a string value (single- or multi-line, basic or literal). */
function stringSpan(kv: AST.TOMLKeyValue): StringSpan | undefined {
  const v = kv.value;
  if (v.type !== 'TOMLValue' || v.kind !== 'string') return undefined;
  const q = v.multiline ? 3 : 1;
  return { start: v.range[0] + q, end: v.range[1] - q, value: v.value };
}

export type CargoTable = 'package' | 'workspace.package';

export interface CargoVersion {
  table: CargoTable;
  /** The version string, or undefined when the table has none (`version.workspace = true` or absent). */
  span: StringSpan | undefined;
  /** Where a missing `version` line goes: after `name = …` of [package]. */
  insertAt: number | undefined;
}

/**
 * The version Cargo.toml carries: `[package] version`, else `[workspace.package] version`.
 * Returns undefined when there is neither table.
 */
export function cargoVersion(text: string): CargoVersion | undefined {
  const all = entries(parseTomlAst(text));
  const find = (p: string[]) => all.find((e) => samePath(e.path, p));
  for (const [table, path] of [
    ['package', ['package', 'version']],
    ['workspace.package', ['workspace', 'package', 'version']],
  ] as const) {
    const e = find([...path]);
    const span = e ? stringSpan(e.node) : undefined;
    if (span) return { table, span, insertAt: undefined };
  }
  const inherits = find(['package', 'version', 'workspace']);
  const name = find(['package', 'name']);
  if (inherits && !name) return { table: 'package', span: undefined, insertAt: undefined };
  if (name?.table && samePath(name.table.resolvedKey, ['package'])) {
    // A line of its own after `name = …` (its comment included).
    const eol = text.indexOf('\n', name.node.range[1]);
    return { table: 'package', span: undefined, insertAt: eol < 0 ? text.length : eol + 1 };
  }
  if (
    all.some((e) => e.path[0] === 'package') ||
    all.some((e) => samePath(e.path.slice(0, 2), ['workspace', 'package']))
  ) {
    return { table: 'package', span: undefined, insertAt: undefined };
  }
  return undefined;
}

function stringAt(all: Entry[], path: (string | number)[]): string | undefined {
  const e = all.find((x) => samePath(x.path, path));
  return e ? stringSpan(e.node)?.value : undefined;
}

/**
 * Names of the Cargo.lock packages whose version this Cargo.toml sets: its `[package] name`, and
 * for `[workspace.package] version` every workspace member that inherits it
 * (`version.workspace = true`), members found with their globs relative to the manifest.
 */
export function cargoPackageNames(root: string, cargoToml: string, text: string): string[] {
  const all = entries(parseTomlAst(text));
  const names = new Set<string>();
  const own = stringAt(all, ['package', 'name']);
  const version = cargoVersion(text);
  if (own && version?.table === 'package') names.add(own);
  if (version?.table !== 'workspace.package') return [...names];
  const inherits = (memberText: string) =>
    entries(parseTomlAst(memberText)).some((e) => samePath(e.path, ['package', 'version', 'workspace']));
  if (own && inherits(text)) names.add(own);
  const members = all.find((e) => samePath(e.path, ['workspace', 'members']))?.node.value;
  if (members?.type !== 'TOMLArray') return [...names];
  const dir = join(root, dirname(cargoToml));
  for (const m of members.elements) {
    if (m.type !== 'TOMLValue' || m.kind !== 'string') continue;
    for (const memberDir of globSync(m.value, { cwd: dir })) {
      let memberText: string;
      try {
        memberText = readFileSync(join(dir, memberDir, 'Cargo.toml'), 'utf8');
      } catch {
        continue;
      }
      try {
        const name = stringAt(entries(parseTomlAst(memberText)), ['package', 'name']);
        if (name && inherits(memberText)) names.add(name);
      } catch (e) {
        if (!(e instanceof TomlError)) throw e; // cargo itself refuses such a member
      }
    }
  }
  return [...names];
}

/**
 * Cargo.lock follows Cargo.toml: every `[[package]]` without a `source` (a workspace or path
 * package) whose **name** is one of `names` gets version `to`, whatever it carried (a stale lock is
 * repaired); registry and git packages, and other local packages, are never touched; every other
 * byte stays. Returns the text unchanged when nothing matches.
 */
export function updateCargoLock(text: string, names: readonly string[], to: string): string {
  const all = entries(parseTomlAst(text));
  const byTable = new Map<AST.TOMLTable, Entry[]>();
  for (const e of all) {
    if (e.table?.kind !== 'array' || e.path[0] !== 'package' || e.path.length !== 3) continue;
    byTable.set(e.table, [...(byTable.get(e.table) ?? []), e]);
  }
  const spans: StringSpan[] = [];
  for (const list of byTable.values()) {
    const get = (k: string) => list.find((e) => e.path[2] === k);
    if (get('source')) continue;
    const name = get('name');
    const version = get('version');
    const nameValue = name ? stringSpan(name.node)?.value : undefined;
    const span = version ? stringSpan(version.node) : undefined;
    if (nameValue && names.includes(nameValue) && span && span.value !== to) spans.push(span);
  }
  let out = text;
  for (const s of spans.sort((a, b) => b.start - a.start))
    out = out.slice(0, s.start) + to + out.slice(s.end);
  return out;
}
