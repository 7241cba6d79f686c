/** Records ↔ rows, shared by both stores: camelCase fields ↔ snake_case columns, JSON for arrays and objects. */
import type { SQLInputValue } from 'node:sqlite';

export type Row = Record<string, unknown>;

const snake = (k: string) => k.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
const camel = (k: string) => k.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

/** Fields stored as JSON text, per table. */
const JSON_FIELDS: Record<string, string[]> = {
  tokens: ['scopes'],
  sites: ['fields'],
  builds: ['sites', 'results'],
};

export function toRow(table: string, record: object): Record<string, SQLInputValue> {
  const out: Record<string, SQLInputValue> = {};
  for (const [k, v] of Object.entries(record)) {
    if (v === undefined) continue;
    out[snake(k)] = JSON_FIELDS[table]?.includes(k) ? JSON.stringify(v) : (v as SQLInputValue);
  }
  return out;
}

export function fromRow<T>(table: string, row: Row | undefined): T | undefined {
  if (!row) return undefined;
  const out: Row = {};
  for (const [k, v] of Object.entries(row)) {
    const key = camel(k);
    out[key] = JSON_FIELDS[table]?.includes(key) && typeof v === 'string' ? JSON.parse(v) : v;
  }
  return out as T;
}
