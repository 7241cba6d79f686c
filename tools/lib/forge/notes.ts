/**
 * Release bodies and checksum files. Stable = changelog notes + a SHA-256 table of every asset;
 * beta = a prerelease notice + the table, no changelog. Templates live in templates/notes/
 * (`stable.md`, `beta.md`), overridable per project with `publish.notesTemplates`.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { SignatureInfo } from '../artifact.ts';
import { SignetError } from '../errors.ts';
import { packagePath } from '../paths.ts';

export type Channel = 'stable' | 'beta';

export interface ChecksumEntry {
  name: string;
  size: number;
  sha256: string;
}

/** `sha256sum`-compatible lines ("<hex>  <name>"), sorted by name; `sha256sum -c` accepts it. */
export function sha256sums(entries: readonly ChecksumEntry[]): string {
  return [...entries]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((e) => `${e.sha256}  ${e.name}\n`)
    .join('');
}

export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

function cell(text: string): string {
  return text
    .replace(/\\/g, '\\\\')
    .replace(/\|/g, '\\|')
    .replace(/[\r\n]+/g, ' ');
}

/** Markdown table of every asset: file, size, SHA-256. */
export function checksumTable(entries: readonly ChecksumEntry[]): string {
  const rows = [...entries]
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))
    .map((e) => `| \`${cell(e.name)}\` | ${formatSize(e.size)} | \`${e.sha256}\` |`);
  return ['| File | Size | SHA-256 |', '| --- | ---: | --- |', ...rows].join('\n');
}

export interface NotesInput {
  channel: Channel;
  tag: string;
  version: string;
  title: string;
  /** Changelog notes (markdown) — used by the stable template only. */
  notes?: string | undefined;
  assets: readonly ChecksumEntry[];
  signer?: SignatureInfo | undefined;
  date?: string | undefined;
}

export const TEMPLATE_VARIABLES = [
  'title',
  'tag',
  'version',
  'channel',
  'date',
  'notes',
  'checksums',
  'signer',
] as const;

function signerLine(signer: SignatureInfo | undefined): string {
  if (!signer) return '';
  const dev = signer.dev ? ' — **development certificate, not trusted by Windows**' : '';
  return `\n\nAuthenticode signer: \`${cell(signer.subject)}\` (certificate SHA-256 \`${signer.leafSha256}\`)${dev}.`;
}

/** Replaces {{name}} in one pass (values are never re-expanded); unknown names are an error. */
export function renderNotes(template: string, input: NotesInput, source = 'template'): string {
  const values: Record<(typeof TEMPLATE_VARIABLES)[number], string> = {
    title: input.title,
    tag: input.tag,
    version: input.version,
    channel: input.channel,
    date: input.date ?? new Date().toISOString().slice(0, 10),
    notes: input.notes?.trim() || '_No notable changes._',
    checksums: checksumTable(input.assets),
    signer: signerLine(input.signer),
  };
  const unknown = new Set<string>();
  const out = template.replace(/\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}/g, (_m, name: string) => {
    if (name in values) return values[name as keyof typeof values];
    unknown.add(name);
    return '';
  });
  if (unknown.size)
    throw new SignetError(
      'E_TEMPLATE_INVALID',
      `${source}: unknown variable(s) ${[...unknown].map((n) => `{{${n}}}`).join(', ')}`,
      {
        details: { template: source, unknown: [...unknown], known: [...TEMPLATE_VARIABLES] },
      },
    );
  return `${out.trim()}\n`;
}

/** Signet's own templates/notes (checkout, installed package or bundled action), if present. */
export function defaultTemplatesDir(): string | undefined {
  let candidate: string;
  try {
    candidate = packagePath('templates', 'notes');
  } catch {
    return undefined;
  }
  return existsSync(join(candidate, 'stable.md')) ? candidate : undefined;
}

export function loadNotesTemplate(
  channel: Channel,
  dir?: string,
  cwd = process.cwd(),
): { text: string; path: string } {
  const base = dir ? resolve(cwd, dir) : defaultTemplatesDir();
  const path = base ? join(base, `${channel}.md`) : `templates/notes/${channel}.md`;
  if (!base || !existsSync(path))
    throw new SignetError('E_TEMPLATE_INVALID', `release notes template not found: ${path}`, {
      hint: 'Point `publish.notesTemplates` at a folder with stable.md and beta.md, or restore templates/notes/.',
    });
  return { text: readFileSync(path, 'utf8'), path };
}
