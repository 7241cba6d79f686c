/**
 * package.json, package-lock.json and npm-shrinkwrap.json through jsonc-parser: a real parse
 * (errors with their offset), and `modify` edits that change only the version's bytes — or add
 * the field after `"name"` in the file's own indentation when it is missing.
 */
import {
  applyEdits,
  type FormattingOptions,
  modify,
  type ParseError,
  parse,
  printParseErrorCode,
} from 'jsonc-parser';

export class JsonError extends Error {}

export function parseJsonObject(text: string): Record<string, unknown> {
  const errors: ParseError[] = [];
  const v = parse(text, errors, { allowTrailingComma: false, disallowComments: true }) as unknown;
  const first = errors[0];
  if (first)
    throw new JsonError(`invalid JSON: ${printParseErrorCode(first.error)} at offset ${first.offset}`);
  if (!v || typeof v !== 'object' || Array.isArray(v)) throw new JsonError('invalid JSON: not an object');
  return v as Record<string, unknown>;
}

function formatting(text: string): FormattingOptions {
  const indent = /\n([ \t]+)"/.exec(text)?.[1] ?? '  ';
  return {
    insertSpaces: !indent.startsWith('\t'),
    tabSize: indent.startsWith('\t') ? 1 : indent.length,
    eol: text.includes('\r\n') ? '\r\n' : '\n',
  };
}

function setString(text: string, path: (string | number)[], value: string): string {
  const edits = modify(text, path, value, {
    formattingOptions: formatting(text),
    // A new key goes right after "name" (or first), where npm puts it.
    getInsertionIndex: (keys) => {
      const i = keys.indexOf('name');
      return i >= 0 ? i + 1 : 0;
    },
  });
  return applyEdits(text, edits);
}

/** package.json: the top-level "version" only. */
export function writePackageJson(text: string, version: string): string {
  parseJsonObject(text);
  return setString(text, ['version'], version);
}

/** package-lock.json / npm-shrinkwrap.json: "version" and packages[""].version. */
export function writePackageLock(text: string, version: string): string {
  const doc = parseJsonObject(text);
  let out = setString(text, ['version'], version);
  const pkgs = doc['packages'] as Record<string, unknown> | undefined;
  if (pkgs && typeof pkgs[''] === 'object' && pkgs[''] !== null)
    out = setString(out, ['packages', '', 'version'], version);
  return out;
}
