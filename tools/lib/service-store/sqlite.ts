/**
 * The embedded store: one SQLite file through Node's built-in `node:sqlite` (no native module),
 * WAL journal, versioned migrations in `schema_migrations`. Rows map to the records of types.ts;
 * array and object fields are JSON text.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { DatabaseSync, type SQLInputValue } from 'node:sqlite';
import { MIGRATIONS } from './migrations.ts';
import { fromRow, type Row, toRow } from './rows.ts';
import type {
  AuditEntry,
  BuildRecord,
  BuildSiteResult,
  Channel,
  DeliveryRecord,
  LinkRecord,
  OutputRecord,
  Page,
  ReleaseRecord,
  SiteRecord,
  Store,
  TokenRecord,
} from './types.ts';

export class SqliteStore implements Store {
  readonly kind = 'sqlite' as const;
  readonly #db: DatabaseSync;

  readonly path: string;

  constructor(path: string) {
    this.path = path;
    if (path !== ':memory:') mkdirSync(dirname(path), { recursive: true });
    this.#db = new DatabaseSync(path);
    this.#db.exec(
      'PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 5000;',
    );
  }

  async migrate(): Promise<number> {
    this.#db.exec(
      'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL)',
    );
    const row = this.#db.prepare('SELECT MAX(version) AS v FROM schema_migrations').get() as {
      v: number | null;
    };
    let current = row.v ?? 0;
    for (const m of MIGRATIONS) {
      if (m.version <= current) continue;
      this.#db.exec('BEGIN');
      try {
        this.#db.exec(m.sql);
        this.#db
          .prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)')
          .run(m.version, Date.now());
        this.#db.exec('COMMIT');
      } catch (e) {
        this.#db.exec('ROLLBACK');
        throw e;
      }
      current = m.version;
    }
    return current;
  }

  async ping(): Promise<void> {
    this.#db.prepare('SELECT 1').get();
  }

  async close(): Promise<void> {
    this.#db.close();
  }

  #insert(table: string, record: object, conflict = ''): number {
    const row = toRow(table, record);
    const cols = Object.keys(row);
    const sql = `INSERT ${conflict} INTO ${table} (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`;
    return Number(this.#db.prepare(sql).run(...Object.values(row)).changes);
  }

  #update(table: string, keyCol: string, key: string, patch: object): void {
    const row = toRow(table, patch);
    delete row[keyCol];
    const cols = Object.keys(row);
    if (!cols.length) return;
    this.#db
      .prepare(`UPDATE ${table} SET ${cols.map((c) => `${c} = ?`).join(', ')} WHERE ${keyCol} = ?`)
      .run(...Object.values(row), key);
  }

  #one<T>(table: string, sql: string, ...args: SQLInputValue[]): T | undefined {
    return fromRow<T>(table, this.#db.prepare(sql).get(...args) as Row | undefined);
  }

  #all<T>(table: string, sql: string, ...args: SQLInputValue[]): T[] {
    return (this.#db.prepare(sql).all(...args) as Row[]).map((r) => fromRow<T>(table, r)!);
  }

  // tokens
  async insertToken(t: TokenRecord): Promise<void> {
    this.#insert('tokens', t);
  }
  async tokenByHash(hash: string): Promise<TokenRecord | undefined> {
    return this.#one('tokens', 'SELECT * FROM tokens WHERE hash = ?', hash);
  }
  async tokenByName(name: string): Promise<TokenRecord | undefined> {
    return this.#one('tokens', 'SELECT * FROM tokens WHERE name = ?', name);
  }
  async listTokens(): Promise<TokenRecord[]> {
    return this.#all('tokens', 'SELECT * FROM tokens ORDER BY created_at');
  }
  async revokeToken(id: string, at: number): Promise<boolean> {
    return (
      Number(
        this.#db.prepare('UPDATE tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL').run(at, id)
          .changes,
      ) > 0
    );
  }
  async touchToken(id: string, at: number): Promise<void> {
    this.#db.prepare('UPDATE tokens SET last_used_at = ? WHERE id = ?').run(at, id);
  }

  // releases
  async insertRelease(r: ReleaseRecord): Promise<void> {
    this.#insert('releases', r);
  }
  async releaseByVersion(version: string, channel: Channel): Promise<ReleaseRecord | undefined> {
    return this.#one(
      'releases',
      'SELECT * FROM releases WHERE version = ? AND channel = ?',
      version,
      channel,
    );
  }
  async releaseById(id: string): Promise<ReleaseRecord | undefined> {
    return this.#one('releases', 'SELECT * FROM releases WHERE id = ?', id);
  }
  async currentRelease(channel: Channel): Promise<ReleaseRecord | undefined> {
    return this.#one(
      'releases',
      'SELECT * FROM releases WHERE channel = ? ORDER BY created_at DESC, rowid DESC LIMIT 1',
      channel,
    );
  }
  async listReleases(): Promise<ReleaseRecord[]> {
    return this.#all('releases', 'SELECT * FROM releases ORDER BY created_at DESC, rowid DESC');
  }

  // sites
  async putSite(s: SiteRecord): Promise<void> {
    this.#insert('sites', s, 'OR REPLACE');
  }
  async putSiteAudited(site: SiteRecord, e: AuditEntry, expected: SiteRecord | null): Promise<boolean> {
    this.#db.exec('BEGIN IMMEDIATE');
    try {
      const cur = this.#db
        .prepare('SELECT key_version, updated_at FROM sites WHERE site_code = ?')
        .get(site.siteCode) as { key_version: number; updated_at: number } | undefined;
      const same = expected
        ? cur?.key_version === expected.keyVersion && cur?.updated_at === expected.updatedAt
        : cur === undefined;
      if (!same) {
        this.#db.exec('ROLLBACK');
        return false;
      }
      this.#insert('sites', site, 'OR REPLACE');
      this.#insert('audit', { ...e, id: undefined });
      this.#db.exec('COMMIT');
      return true;
    } catch (err) {
      this.#db.exec('ROLLBACK');
      throw err;
    }
  }
  async site(siteCode: string): Promise<SiteRecord | undefined> {
    return this.#one('sites', 'SELECT * FROM sites WHERE site_code = ?', siteCode);
  }
  async listSites(after: string | null, limit: number): Promise<Page<SiteRecord>> {
    const items = this.#all<SiteRecord>(
      'sites',
      'SELECT * FROM sites WHERE site_code > ? ORDER BY site_code LIMIT ?',
      after ?? '',
      limit + 1,
    );
    const more = items.length > limit;
    if (more) items.pop();
    return { items, next: more ? items[items.length - 1]!.siteCode : null };
  }
  async deleteSite(siteCode: string): Promise<boolean> {
    return Number(this.#db.prepare('DELETE FROM sites WHERE site_code = ?').run(siteCode).changes) > 0;
  }

  // outputs
  async output(key: string): Promise<OutputRecord | undefined> {
    return this.#one('outputs', 'SELECT * FROM outputs WHERE key = ?', key);
  }
  async claimOutput(o: OutputRecord, now = Date.now()): Promise<{ record: OutputRecord; claimed: boolean }> {
    const row = toRow('outputs', o);
    const cols = Object.keys(row);
    const sql = `INSERT INTO outputs (${cols.join(', ')}) VALUES (${cols.map(() => '?').join(', ')})
      ON CONFLICT (key) DO UPDATE SET ${cols
        .filter((c) => c !== 'key')
        .map((c) => `${c} = excluded.${c}`)
        .join(', ')}
      WHERE outputs.state = 'building' AND outputs.lease_until IS NOT NULL AND outputs.lease_until < ?`;
    const claimed = Number(this.#db.prepare(sql).run(...Object.values(row), now).changes) > 0;
    return { record: (await this.output(o.key))!, claimed };
  }
  async renewLeases(keys: string[], builtBy: string, until: number): Promise<void> {
    const stmt = this.#db.prepare(
      "UPDATE outputs SET lease_until = ? WHERE key = ? AND built_by = ? AND state = 'building'",
    );
    for (const k of keys) stmt.run(until, k, builtBy);
  }
  async updateOutput(key: string, patch: Partial<OutputRecord>): Promise<void> {
    this.#update('outputs', 'key', key, patch);
  }
  async staleOutputs(): Promise<OutputRecord[]> {
    return this.#all('outputs', "SELECT * FROM outputs WHERE state = 'building'");
  }
  async outputsOfSite(siteCode: string): Promise<OutputRecord[]> {
    return this.#all('outputs', 'SELECT * FROM outputs WHERE site_code = ? ORDER BY created_at', siteCode);
  }
  async deleteOutput(key: string): Promise<void> {
    this.#db.prepare('DELETE FROM outputs WHERE key = ?').run(key);
  }
  async referencedBlobs(): Promise<Set<string>> {
    const rows = this.#db
      .prepare(
        'SELECT sha256 FROM outputs WHERE sha256 IS NOT NULL UNION SELECT base_sha256 FROM outputs WHERE base_sha256 IS NOT NULL UNION SELECT delta_sha256 FROM outputs WHERE delta_sha256 IS NOT NULL UNION SELECT agent_sha256 FROM releases',
      )
      .all() as { sha256: string }[];
    return new Set(rows.map((r) => r.sha256));
  }

  // links
  async insertLink(l: LinkRecord): Promise<void> {
    this.#insert('links', l);
  }
  async linkByHash(hash: string): Promise<LinkRecord | undefined> {
    return this.#one('links', 'SELECT * FROM links WHERE hash = ?', hash);
  }
  async activeLinks(siteCode: string, at: number): Promise<LinkRecord[]> {
    return this.#all(
      'links',
      'SELECT * FROM links WHERE site_code = ? AND expires_at > ? AND revoked_at IS NULL',
      siteCode,
      at,
    );
  }

  async revokeLinks(siteCode: string, at: number): Promise<void> {
    this.#db
      .prepare('UPDATE links SET revoked_at = ? WHERE site_code = ? AND revoked_at IS NULL')
      .run(at, siteCode);
  }

  // builds
  async insertBuild(b: BuildRecord): Promise<void> {
    this.#insert('builds', b);
  }
  async build(id: string): Promise<BuildRecord | undefined> {
    return this.#one('builds', 'SELECT * FROM builds WHERE id = ?', id);
  }
  async updateBuild(id: string, patch: Partial<BuildRecord>): Promise<void> {
    this.#update('builds', 'id', id, patch);
  }
  async putBuildResult(buildId: string, result: BuildSiteResult, at: number): Promise<void> {
    this.#db
      .prepare(
        'INSERT OR REPLACE INTO build_results (build_id, site_code, ok, result, at) VALUES (?, ?, ?, ?, ?)',
      )
      .run(buildId, result.siteCode, result.ok ? 1 : 0, JSON.stringify(result), at);
  }
  async buildResults(buildId: string): Promise<BuildSiteResult[]> {
    const rows = this.#db
      .prepare('SELECT result FROM build_results WHERE build_id = ? ORDER BY at, site_code')
      .all(buildId) as { result: string }[];
    return rows.map((r) => JSON.parse(r.result) as BuildSiteResult);
  }
  async finishBuild(id: string, state: 'completed' | 'failed', at: number): Promise<boolean> {
    return (
      Number(
        this.#db
          .prepare(
            "UPDATE builds SET state = ?, finished_at = ? WHERE id = ? AND state NOT IN ('completed', 'failed')",
          )
          .run(state, at, id).changes,
      ) > 0
    );
  }
  async unfinishedBuilds(): Promise<BuildRecord[]> {
    return this.#all(
      'builds',
      "SELECT * FROM builds WHERE state IN ('queued', 'running') ORDER BY created_at",
    );
  }

  // audit
  async audit(e: AuditEntry): Promise<void> {
    this.#insert('audit', { ...e, id: undefined });
  }
  async listAudit(before: number | null, limit: number): Promise<Page<AuditEntry>> {
    const items = this.#all<AuditEntry>(
      'audit',
      'SELECT * FROM audit WHERE id < ? ORDER BY id DESC LIMIT ?',
      before ?? Number.MAX_SAFE_INTEGER,
      limit + 1,
    );
    const more = items.length > limit;
    if (more) items.pop();
    return { items, next: more ? String(items[items.length - 1]!.id) : null };
  }

  // webhook deliveries
  async insertDelivery(d: DeliveryRecord): Promise<void> {
    this.#insert('deliveries', d);
  }
  async updateDelivery(id: string, patch: Partial<DeliveryRecord>): Promise<void> {
    this.#update('deliveries', 'id', id, patch);
  }
  async dueDeliveries(at: number): Promise<DeliveryRecord[]> {
    return this.#all(
      'deliveries',
      "SELECT * FROM deliveries WHERE state = 'pending' AND next_at <= ? ORDER BY next_at",
      at,
    );
  }
  async listDeliveries(limit: number): Promise<DeliveryRecord[]> {
    return this.#all('deliveries', 'SELECT * FROM deliveries ORDER BY created_at DESC LIMIT ?', limit);
  }
}
