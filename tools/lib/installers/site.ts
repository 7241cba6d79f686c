/**
 * Site configuration: validation and loading (JSON, YAML, CSV, stdin, flags). Labels are free
 * Unicode text and are never interpreted; only the site code and the key version are identifiers
 * that may reach a template or a file name. The enrollment key is a secret: it is registered with
 * the redactor as soon as it is read, and no message Signet builds ever includes it.
 */
import { readFileSync } from 'node:fs';
import { parse } from 'csv-parse/sync';
import YAML from 'yaml';
import { z } from 'zod';
import { SignetError } from '../errors.ts';
import { registerSecret } from '../redact.ts';
import { isSecretRef, resolveSecret, type SecretRef } from '../secrets.ts';
import { type Fingerprint, fingerprint } from './fingerprint.ts';

export const SITE_CODE_RE = /^[A-Za-z0-9][A-Za-z0-9-]{0,63}$/;
/** Labels may be long, but not unbounded (a site.json is read by the agent at every start). */
const MAX_LABEL = 65_536;
const MIN_KEY_LENGTH = 16;

const label = z
  .string()
  .max(MAX_LABEL)
  .refine((s) => s.isWellFormed(), 'must be well-formed Unicode (no lone surrogates)')
  .refine((s) => !s.includes('\u0000'), 'must not contain NUL');

/** What a site entry may contain (file, stdin, flags). */
export const siteInputSchema = z
  .object({
    siteCode: z
      .string()
      .regex(SITE_CODE_RE, 'letters, digits and dashes, starting with a letter or digit, at most 64'),
    serverUrl: z.string().url(),
    company: label.default(''),
    siteName: label.default(''),
    department: label.default(''),
    deviceType: label.default(''),
    tags: z.array(label).max(256).default([]),
    enrollmentKey: z.string().optional(),
    enrollmentKeyRef: z.string().refine(isSecretRef, 'must be env:NAME or file:PATH').optional(),
    keyVersion: z.coerce.number().int().min(1).max(1_000_000),
  })
  .strict();

export type SiteInput = z.input<typeof siteInputSchema>;

/** A validated site with its resolved key. */
export interface SiteConfig {
  siteCode: string;
  serverUrl: string;
  company: string;
  siteName: string;
  department: string;
  deviceType: string;
  tags: string[];
  enrollmentKey: string;
  keyVersion: number;
}

export interface SiteValidationOptions {
  /** Dev profile: http:// server URLs are accepted. */
  dev?: boolean;
  env?: NodeJS.ProcessEnv;
}

export interface SiteProblem {
  /** e.g. "sites[2].serverUrl" */
  path: string;
  message: string;
  siteCode?: string;
  /** Position of the entry in the input list (set by validateSites). */
  index?: number;
}

/** Never shows an input value: problems name fields only (values may be keys). */
function problemsOf(error: z.ZodError, prefix: string): SiteProblem[] {
  return error.issues.map((i) => ({
    path: [prefix, ...i.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`))].join(''),
    message: i.message,
  }));
}

function checkKey(key: string): string | undefined {
  if (key.length < MIN_KEY_LENGTH) return `must be at least ${MIN_KEY_LENGTH} characters`;
  if (key !== key.trim()) return 'must not start or end with white space';
  if (/[\u0000-\u001f\u007f]/.test(key)) return 'must not contain control characters';
  return undefined;
}

/** Validates one site entry; returns the site or the list of problems (never throws for bad input). */
export function validateSite(
  raw: unknown,
  prefix: string,
  options: SiteValidationOptions = {},
): { site?: SiteConfig; problems: SiteProblem[] } {
  const parsed = siteInputSchema.safeParse(raw);
  const siteCode =
    raw && typeof raw === 'object' && typeof (raw as { siteCode?: unknown }).siteCode === 'string'
      ? SITE_CODE_RE.test((raw as { siteCode: string }).siteCode)
        ? (raw as { siteCode: string }).siteCode
        : undefined
      : undefined;
  if (!parsed.success) {
    return {
      problems: problemsOf(parsed.error, prefix).map((p) => ({ ...p, ...(siteCode ? { siteCode } : {}) })),
    };
  }
  const input = parsed.data;
  const problems: SiteProblem[] = [];
  const add = (field: string, message: string) =>
    problems.push({ path: `${prefix}.${field}`, message, siteCode: input.siteCode });

  let url: URL | undefined;
  try {
    url = new URL(input.serverUrl);
  } catch {
    add('serverUrl', 'is not a URL');
  }
  if (url) {
    if (url.protocol !== 'https:' && !(options.dev && url.protocol === 'http:'))
      add(
        'serverUrl',
        options.dev ? 'must be http(s)://' : 'must be https:// (http is accepted only with a dev profile)',
      );
    if (url.username || url.password) add('serverUrl', 'must not carry credentials');
  }

  let key: string | undefined;
  if (input.enrollmentKey !== undefined && input.enrollmentKeyRef !== undefined) {
    add('enrollmentKey', 'give either enrollmentKey or enrollmentKeyRef, not both');
  } else if (input.enrollmentKeyRef !== undefined) {
    try {
      key = resolveSecret(input.enrollmentKeyRef as SecretRef, `${prefix}.enrollmentKeyRef`, options.env);
    } catch (e) {
      add('enrollmentKeyRef', (e as Error).message);
    }
  } else if (input.enrollmentKey !== undefined) {
    key = input.enrollmentKey;
  } else add('enrollmentKey', 'is required (enrollmentKey, or enrollmentKeyRef: env:NAME | file:PATH)');
  if (key !== undefined) {
    const bad = checkKey(key);
    if (bad) add(input.enrollmentKeyRef ? 'enrollmentKeyRef' : 'enrollmentKey', bad);
    // A valid key is registered with the redactor before it can reach any output. (Problems never
    // carry values, so an invalid one needs no registration — and a server must not let callers
    // grow the redactor with junk.)
    else registerSecret(key);
  }
  if (problems.length || key === undefined) return { problems };
  return {
    site: {
      siteCode: input.siteCode,
      serverUrl: input.serverUrl,
      company: input.company,
      siteName: input.siteName,
      department: input.department,
      deviceType: input.deviceType,
      tags: input.tags,
      enrollmentKey: key,
      keyVersion: input.keyVersion,
    },
    problems,
  };
}

export interface LoadedSites {
  sites: SiteConfig[];
  /** Entries that failed validation (the batch carries on without them). */
  problems: SiteProblem[];
}

/** Validates a list; duplicate site codes (case-insensitive: Windows file names) are problems. */
export function validateSites(entries: unknown[], options: SiteValidationOptions = {}): LoadedSites {
  const sites: SiteConfig[] = [];
  const problems: SiteProblem[] = [];
  const seen = new Map<string, number>();
  entries.forEach((entry, i) => {
    const r = validateSite(entry, `sites[${i}]`, options);
    problems.push(...r.problems.map((p) => ({ ...p, index: i })));
    if (!r.site) return;
    const folded = r.site.siteCode.toLowerCase();
    const first = seen.get(folded);
    if (first !== undefined) {
      problems.push({
        path: `sites[${i}].siteCode`,
        message: `duplicates sites[${first}] (site codes are compared case-insensitively)`,
        siteCode: r.site.siteCode,
        index: i,
      });
      return;
    }
    seen.set(folded, i);
    sites.push(r.site);
  });
  return { sites, problems };
}

// ---------------------------------------------------------------------------------------------
// Formats

export type SitesFormat = 'json' | 'yaml' | 'csv';

const CSV_COLUMNS: Record<string, keyof SiteInput> = {
  sitecode: 'siteCode',
  site: 'siteCode',
  serverurl: 'serverUrl',
  server: 'serverUrl',
  company: 'company',
  sitename: 'siteName',
  department: 'department',
  devicetype: 'deviceType',
  tags: 'tags',
  enrollmentkey: 'enrollmentKey',
  enrollmentkeyref: 'enrollmentKeyRef',
  keyversion: 'keyVersion',
};

/** What a csv-parse error says, as Signet words it: line numbers only, never the cell (it may hold a key). */
const CSV_ERRORS: Record<string, string> = {
  CSV_QUOTE_NOT_CLOSED: 'a quoted field is not closed',
  CSV_INVALID_CLOSING_QUOTE:
    'text after the closing quote of a field; quote the whole field and double any quote inside it ("")',
  INVALID_OPENING_QUOTE:
    'a quote inside an unquoted field; quote the whole field and double any quote inside it ("")',
};

/**
 * RFC 4180 through csv-parse: quoted fields, "" escapes, CRLF, LF or CR, newlines and commas
 * inside quotes; a BOM is skipped; blank lines are ignored. A stray quote is refused rather than
 * guessed at. Errors name the line, never the content.
 */
export function parseCsv(text: string): string[][] {
  try {
    return parse(text, {
      bom: true,
      // every line ending, mixed too (csv-parse otherwise keeps the first one it meets)
      record_delimiter: ['\r\n', '\n', '\r'],
      relax_column_count: true, // the row-length check below names the row
      skip_empty_lines: true,
    }) as string[][];
  } catch (e) {
    const { code, lines } = e as { code?: string; lines?: number };
    const what = (code && CSV_ERRORS[code]) ?? `not valid CSV (${code ?? 'parse error'})`;
    throw new SignetError(
      'E_INPUT_INVALID',
      `CSV${typeof lines === 'number' ? `: line ${lines}` : ''}: ${what}`,
    );
  }
}

/** CSV rows → site entries. `tags` is a JSON array (`["a","b"]`) or `;`-separated. */
export function csvToEntries(text: string): Record<string, unknown>[] {
  const rows = parseCsv(text);
  const header = rows.shift();
  if (!header) return [];
  const fields = header.map((h, i) => {
    const f =
      CSV_COLUMNS[
        h
          .trim()
          .toLowerCase()
          .replace(/[\s_-]/g, '')
      ];
    if (!f)
      throw new SignetError('E_INPUT_INVALID', `CSV: unknown column ${JSON.stringify(h)} (column ${i + 1})`);
    return f;
  });
  return rows.map((cells, r) => {
    if (cells.length !== fields.length)
      throw new SignetError(
        'E_INPUT_INVALID',
        `CSV: row ${r + 2} has ${cells.length} fields, the header has ${fields.length}`,
      );
    const entry: Record<string, unknown> = {};
    fields.forEach((f, i) => {
      const v = cells[i]!;
      if (f === 'tags') {
        if (v.trim().startsWith('[')) {
          try {
            entry[f] = JSON.parse(v);
          } catch {
            throw new SignetError('E_INPUT_INVALID', `CSV: row ${r + 2}: tags is not a JSON array`);
          }
        } else entry[f] = v === '' ? [] : v.split(';');
      } else if (v !== '' || f === 'company' || f === 'siteName' || f === 'department' || f === 'deviceType')
        entry[f] = v;
    });
    return entry;
  });
}

export function detectFormat(text: string, name?: string): SitesFormat {
  const lower = name?.toLowerCase() ?? '';
  if (lower.endsWith('.json')) return 'json';
  if (lower.endsWith('.csv')) return 'csv';
  if (lower.endsWith('.yaml') || lower.endsWith('.yml')) return 'yaml';
  const t = text.replace(/^\uFEFF/, '').trimStart();
  if (t.startsWith('[') || t.startsWith('{')) return 'json';
  const firstLine = t.split(/\r?\n/, 1)[0] ?? '';
  if (/^"?site[_ -]?code"?\s*,/i.test(firstLine)) return 'csv';
  return 'yaml';
}

/** Parses a sites document: a list, `{sites: [...]}`, or a single site object. Never echoes content. */
export function parseSitesText(text: string, format: SitesFormat, source: string): unknown[] {
  let doc: unknown;
  if (format === 'csv') return csvToEntries(text);
  try {
    doc = format === 'json' ? JSON.parse(text.replace(/^\uFEFF/, '')) : YAML.parse(text);
  } catch (e) {
    // JSON.parse / YAML messages may quote the input (which may hold keys): position only.
    const at = /position \d+|line \d+(, column \d+)?|at line \d+/.exec((e as Error).message)?.[0];
    throw new SignetError(
      'E_INPUT_INVALID',
      `${source} is not valid ${format.toUpperCase()}${at ? ` (${at})` : ''}`,
    );
  }
  if (Array.isArray(doc)) return doc;
  if (doc && typeof doc === 'object') {
    const sites = (doc as { sites?: unknown }).sites;
    if (Array.isArray(sites)) return sites;
    if ('siteCode' in doc) return [doc];
  }
  throw new SignetError(
    'E_INPUT_INVALID',
    `${source}: expected a list of sites, {"sites": [...]}, or one site object`,
  );
}

export interface LoadSitesOptions extends SiteValidationOptions {
  format?: SitesFormat;
  /** Used for `-`: defaults to process.stdin. */
  stdin?: NodeJS.ReadableStream;
}

async function readAll(stream: NodeJS.ReadableStream): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(typeof c === 'string' ? Buffer.from(c) : (c as Buffer));
  return Buffer.concat(chunks).toString('utf8');
}

/** Loads sites from a JSON/YAML/CSV file, or from stdin when `path` is `-`. */
export async function loadSites(path: string, options: LoadSitesOptions = {}): Promise<LoadedSites> {
  let text: string;
  if (path === '-') text = await readAll(options.stdin ?? process.stdin);
  else {
    try {
      text = readFileSync(path, 'utf8');
    } catch {
      throw new SignetError('E_FILE_NOT_FOUND', `sites file not found: ${path}`);
    }
  }
  const source = path === '-' ? 'stdin' : path;
  const format = options.format ?? detectFormat(text, path === '-' ? undefined : path);
  return validateSites(parseSitesText(text, format, source), options);
}

/** Throws one E_SITE_INVALID listing every problem (for single-site inputs such as flags). */
export function assertSites(loaded: LoadedSites): SiteConfig[] {
  if (loaded.problems.length) {
    const lines = loaded.problems.map((p) => `${p.path}: ${p.message}`);
    throw new SignetError('E_SITE_INVALID', `invalid site configuration:\n  - ${lines.join('\n  - ')}`, {
      details: { problems: loaded.problems },
    });
  }
  return loaded.sites;
}

export function siteFingerprint(site: SiteConfig): Fingerprint {
  return fingerprint(site.enrollmentKey, site.keyVersion);
}
