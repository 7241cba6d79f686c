/**
 * The service's records in PostgreSQL (`service.database: postgres://…`), for several service
 * and worker processes over one database. Same records and semantics as the SQLite store; claims
 * (`claimOutput`) are `INSERT … ON CONFLICT DO NOTHING`, so exactly one process builds an output.
 * Migrations run under an advisory lock, so processes starting together apply them once.
 */
import pg from 'pg';
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

const INT8 = 20;

export const PG_MIGRATIONS: { version: number; sql: string }[] = [
  {
    version: 1,
    sql: `
CREATE TABLE tokens (
  id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, hash TEXT NOT NULL UNIQUE, scopes TEXT NOT NULL,
  created_at BIGINT NOT NULL, expires_at BIGINT, revoked_at BIGINT, last_used_at BIGINT
);
CREATE TABLE releases (
  id TEXT PRIMARY KEY, version TEXT NOT NULL, channel TEXT NOT NULL, agent_sha256 TEXT NOT NULL,
  agent_size BIGINT NOT NULL, signer_subject TEXT NOT NULL, signer_leaf_sha256 TEXT NOT NULL,
  timestamp TEXT, created_at BIGINT NOT NULL, seq BIGSERIAL, UNIQUE (version, channel)
);
CREATE TABLE sites (
  site_code TEXT PRIMARY KEY, fields TEXT NOT NULL, key_version INTEGER NOT NULL,
  key_ciphertext TEXT NOT NULL, fingerprint TEXT NOT NULL, created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE TABLE outputs (
  key TEXT PRIMARY KEY, site_code TEXT NOT NULL, release_id TEXT NOT NULL, key_version INTEGER NOT NULL,
  kind TEXT NOT NULL, state TEXT NOT NULL, sha256 TEXT, size BIGINT, file_name TEXT, error TEXT,
  created_at BIGINT NOT NULL, verified_at BIGINT
);
CREATE INDEX outputs_site ON outputs (site_code);
CREATE TABLE links (
  id TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, site_code TEXT NOT NULL, kind TEXT NOT NULL,
  channel TEXT NOT NULL, version TEXT, key_version INTEGER NOT NULL, created_by TEXT NOT NULL,
  created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, revoked_at BIGINT
);
CREATE INDEX links_site ON links (site_code);
CREATE TABLE builds (
  id TEXT PRIMARY KEY, release_id TEXT NOT NULL, sites TEXT NOT NULL, state TEXT NOT NULL,
  results TEXT NOT NULL, created_by TEXT NOT NULL, created_at BIGINT NOT NULL, finished_at BIGINT
);
CREATE TABLE audit (
  id BIGSERIAL PRIMARY KEY, at BIGINT NOT NULL, actor_kind TEXT NOT NULL, actor TEXT NOT NULL,
  ip TEXT NOT NULL, action TEXT NOT NULL, site_code TEXT, result TEXT NOT NULL, detail TEXT
);
CREATE TABLE deliveries (
  id TEXT PRIMARY KEY, event TEXT NOT NULL, url TEXT NOT NULL, payload TEXT NOT NULL,
  attempts INTEGER NOT NULL, state TEXT NOT NULL, last_status INTEGER, last_error TEXT,
  next_at BIGINT NOT NULL, created_at BIGINT NOT NULL, delivered_at BIGINT
);
`,
  },
  {
    version: 2,
    sql: `
ALTER TABLE outputs ADD COLUMN lease_until BIGINT;
ALTER TABLE outputs ADD COLUMN built_by TEXT;
CREATE TABLE build_results (
  build_id TEXT NOT NULL, site_code TEXT NOT NULL, ok BOOLEAN NOT NULL, result TEXT NOT NULL,
  at BIGINT NOT NULL, PRIMARY KEY (build_id, site_code)
);
`,
  },
  {
    version: 3,
    sql: `
ALTER TABLE outputs ADD COLUMN base_sha256 TEXT;
ALTER TABLE outputs ADD COLUMN delta_sha256 TEXT;
`,
  },
];

const PRIMARY: Record<string, string> = { sites: 'site_code' };

export class PostgresStore implements Store {
  readonly kind = 'postgres' as const;
  readonly #pool: pg.Pool;

  constructor(url: string, options: { max?: number } = {}) {
    this.#pool = new pg.Pool({
      connectionString: url,
      max: options.max ?? 10,
      types: {
        getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
          oid === INT8 ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format)) as never,
      },
    });
    this.#pool.on('error', () => undefined);
  }

  async migrate(): Promise<number> {
    const c = await this.#pool.connect();
    try {
      await c.query('SELECT pg_advisory_lock(74210001)');
      await c.query(
        'CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)',
      );
      const r = await c.query<{ v: number | null }>('SELECT MAX(version) AS v FROM schema_migrations');
      let current = r.rows[0]?.v ?? 0;
      for (const m of PG_MIGRATIONS) {
        if (m.version <= current) continue;
        await c.query('BEGIN');
        try {
          await c.query(m.sql);
          await c.query('INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)', [
            m.version,
            Date.now(),
          ]);
          await c.query('COMMIT');
        } catch (e) {
          await c.query('ROLLBACK');
          throw e;
        }
        current = m.version;
      }
      return current;
    } finally {
      await c.query('SELECT pg_advisory_unlock(74210001)').catch(() => undefined);
      c.release();
    }
  }

  async ping(): Promise<void> {
    await this.#pool.query('SELECT 1');
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }

  async #q(sql: string, args: unknown[] = []): Promise<pg.QueryResult<Row>> {
    return this.#pool.query<Row>(sql, args);
  }

  async #insert(
    table: string,
    record: object,
    conflict: 'none' | 'ignore' | 'replace' = 'none',
  ): Promise<number> {
    const row = toRow(table, record);
    const cols = Object.keys(row);
    const pk = PRIMARY[table] ?? (table === 'outputs' ? 'key' : 'id');
    let sql = `INSERT INTO ${table} (${cols.join(', ')}) VALUES (${cols.map((_, i) => `$${i + 1}`).join(', ')})`;
    if (conflict === 'ignore') sql += ' ON CONFLICT DO NOTHING';
    if (conflict === 'replace')
      sql += ` ON CONFLICT (${pk}) DO UPDATE SET ${cols
        .filter((c) => c !== pk)
        .map((c) => `${c} = EXCLUDED.${c}`)
        .join(', ')}`;
    return (await this.#q(sql, Object.values(row))).rowCount ?? 0;
  }

  async #update(table: string, keyCol: string, key: string, patch: object): Promise<void> {
    const row = toRow(table, patch);
    delete row[keyCol];
    const cols = Object.keys(row);
    if (!cols.length) return;
    await this.#q(
      `UPDATE ${table} SET ${cols.map((c, i) => `${c} = $${i + 1}`).join(', ')} WHERE ${keyCol} = $${cols.length + 1}`,
      [...Object.values(row), key],
    );
  }

  async #one<T>(table: string, sql: string, ...args: unknown[]): Promise<T | undefined> {
    const r = await this.#q(sql, args);
    const row = r.rows[0];
    if (row && 'seq' in row) delete row['seq'];
    return fromRow<T>(table, row);
  }

  async #all<T>(table: string, sql: string, ...args: unknown[]): Promise<T[]> {
    return (await this.#q(sql, args)).rows.map((row) => {
      if ('seq' in row) delete row['seq'];
      return fromRow<T>(table, row)!;
    });
  }

  insertToken = async (t: TokenRecord) => void (await this.#insert('tokens', t));
  tokenByHash = (hash: string) =>
    this.#one<TokenRecord>('tokens', 'SELECT * FROM tokens WHERE hash = $1', hash);
  tokenByName = (name: string) =>
    this.#one<TokenRecord>('tokens', 'SELECT * FROM tokens WHERE name = $1', name);
  listTokens = () => this.#all<TokenRecord>('tokens', 'SELECT * FROM tokens ORDER BY created_at');
  revokeToken = async (id: string, at: number) =>
    ((await this.#q('UPDATE tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL', [at, id]))
      .rowCount ?? 0) > 0;
  touchToken = async (id: string, at: number) =>
    void (await this.#q('UPDATE tokens SET last_used_at = $1 WHERE id = $2', [at, id]));

  insertRelease = async (r: ReleaseRecord) => void (await this.#insert('releases', r));
  releaseByVersion = (version: string, channel: Channel) =>
    this.#one<ReleaseRecord>(
      'releases',
      'SELECT * FROM releases WHERE version = $1 AND channel = $2',
      version,
      channel,
    );
  releaseById = (id: string) =>
    this.#one<ReleaseRecord>('releases', 'SELECT * FROM releases WHERE id = $1', id);
  currentRelease = (channel: Channel) =>
    this.#one<ReleaseRecord>(
      'releases',
      'SELECT * FROM releases WHERE channel = $1 ORDER BY created_at DESC, seq DESC LIMIT 1',
      channel,
    );
  listReleases = () =>
    this.#all<ReleaseRecord>('releases', 'SELECT * FROM releases ORDER BY created_at DESC, seq DESC');

  putSite = async (s: SiteRecord) => void (await this.#insert('sites', s, 'replace'));
  async putSiteAudited(site: SiteRecord, e: AuditEntry, expected: SiteRecord | null): Promise<boolean> {
    const c = await this.#pool.connect();
    try {
      await c.query('BEGIN');
      const insert = (table: string, record: object) => {
        const row = toRow(table, record);
        const cols = Object.keys(row);
        return c.query(
          `INSERT INTO ${table} (${cols.join(', ')}) VALUES (${cols.map((_, i) => `$${i + 1}`).join(', ')})`,
          Object.values(row),
        );
      };
      let written: number;
      if (expected) {
        const row = toRow('sites', site);
        const cols = Object.keys(row).filter((k) => k !== 'site_code');
        const r = await c.query(
          `UPDATE sites SET ${cols.map((k, i) => `${k} = $${i + 1}`).join(', ')} WHERE site_code = $${cols.length + 1} AND key_version = $${cols.length + 2} AND updated_at = $${cols.length + 3}`,
          [...cols.map((k) => row[k]), site.siteCode, expected.keyVersion, expected.updatedAt],
        );
        written = r.rowCount ?? 0;
      } else {
        const row = toRow('sites', site);
        const cols = Object.keys(row);
        const r = await c.query(
          `INSERT INTO sites (${cols.join(', ')}) VALUES (${cols.map((_, i) => `$${i + 1}`).join(', ')}) ON CONFLICT (site_code) DO NOTHING`,
          Object.values(row),
        );
        written = r.rowCount ?? 0;
      }
      if (!written) {
        await c.query('ROLLBACK');
        return false;
      }
      await insert('audit', { ...e, id: undefined });
      await c.query('COMMIT');
      return true;
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      c.release();
    }
  }
  site = (siteCode: string) =>
    this.#one<SiteRecord>('sites', 'SELECT * FROM sites WHERE site_code = $1', siteCode);
  async listSites(after: string | null, limit: number): Promise<Page<SiteRecord>> {
    const items = await this.#all<SiteRecord>(
      'sites',
      'SELECT * FROM sites WHERE site_code COLLATE "C" > $1 ORDER BY site_code COLLATE "C" LIMIT $2',
      after ?? '',
      limit + 1,
    );
    const more = items.length > limit;
    if (more) items.pop();
    return { items, next: more ? items[items.length - 1]!.siteCode : null };
  }
  deleteSite = async (siteCode: string) =>
    ((await this.#q('DELETE FROM sites WHERE site_code = $1', [siteCode])).rowCount ?? 0) > 0;

  output = (key: string) => this.#one<OutputRecord>('outputs', 'SELECT * FROM outputs WHERE key = $1', key);
  async claimOutput(o: OutputRecord, now = Date.now()): Promise<{ record: OutputRecord; claimed: boolean }> {
    const row = toRow('outputs', o);
    const cols = Object.keys(row);
    const sql = `INSERT INTO outputs (${cols.join(', ')}) VALUES (${cols.map((_, i) => `$${i + 1}`).join(', ')})
      ON CONFLICT (key) DO UPDATE SET ${cols
        .filter((c) => c !== 'key')
        .map((c) => `${c} = EXCLUDED.${c}`)
        .join(', ')}
      WHERE outputs.state = 'building' AND outputs.lease_until IS NOT NULL AND outputs.lease_until < $${cols.length + 1}`;
    const claimed = ((await this.#q(sql, [...Object.values(row), now])).rowCount ?? 0) > 0;
    return { record: (await this.output(o.key))!, claimed };
  }
  renewLeases = async (keys: string[], builtBy: string, until: number) =>
    void (await this.#q(
      "UPDATE outputs SET lease_until = $1 WHERE key = ANY($2) AND built_by = $3 AND state = 'building'",
      [until, keys, builtBy],
    ));
  updateOutput = (key: string, patch: Partial<OutputRecord>) => this.#update('outputs', 'key', key, patch);
  staleOutputs = () => this.#all<OutputRecord>('outputs', "SELECT * FROM outputs WHERE state = 'building'");
  outputsOfSite = (siteCode: string) =>
    this.#all<OutputRecord>(
      'outputs',
      'SELECT * FROM outputs WHERE site_code = $1 ORDER BY created_at',
      siteCode,
    );
  deleteOutput = async (key: string) => void (await this.#q('DELETE FROM outputs WHERE key = $1', [key]));
  async referencedBlobs(): Promise<Set<string>> {
    const r = await this.#q(
      'SELECT sha256 FROM outputs WHERE sha256 IS NOT NULL UNION SELECT base_sha256 FROM outputs WHERE base_sha256 IS NOT NULL UNION SELECT delta_sha256 FROM outputs WHERE delta_sha256 IS NOT NULL UNION SELECT agent_sha256 FROM releases',
    );
    return new Set(r.rows.map((x) => String(x['sha256'])));
  }

  insertLink = async (l: LinkRecord) => void (await this.#insert('links', l));
  linkByHash = (hash: string) => this.#one<LinkRecord>('links', 'SELECT * FROM links WHERE hash = $1', hash);
  activeLinks = (siteCode: string, at: number) =>
    this.#all<LinkRecord>(
      'links',
      'SELECT * FROM links WHERE site_code = $1 AND expires_at > $2 AND revoked_at IS NULL',
      siteCode,
      at,
    );

  revokeLinks = async (siteCode: string, at: number) =>
    void (await this.#q('UPDATE links SET revoked_at = $1 WHERE site_code = $2 AND revoked_at IS NULL', [
      at,
      siteCode,
    ]));

  insertBuild = async (b: BuildRecord) => void (await this.#insert('builds', b));
  build = (id: string) => this.#one<BuildRecord>('builds', 'SELECT * FROM builds WHERE id = $1', id);
  updateBuild = (id: string, patch: Partial<BuildRecord>) => this.#update('builds', 'id', id, patch);
  putBuildResult = async (buildId: string, result: BuildSiteResult, at: number) =>
    void (await this.#q(
      'INSERT INTO build_results (build_id, site_code, ok, result, at) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (build_id, site_code) DO UPDATE SET ok = EXCLUDED.ok, result = EXCLUDED.result, at = EXCLUDED.at',
      [buildId, result.siteCode, result.ok, JSON.stringify(result), at],
    ));
  buildResults = async (buildId: string) =>
    (
      await this.#q('SELECT result FROM build_results WHERE build_id = $1 ORDER BY at, site_code', [buildId])
    ).rows.map((r) => JSON.parse(String(r['result'])) as BuildSiteResult);
  finishBuild = async (id: string, state: 'completed' | 'failed', at: number) =>
    ((
      await this.#q(
        "UPDATE builds SET state = $1, finished_at = $2 WHERE id = $3 AND state NOT IN ('completed', 'failed')",
        [state, at, id],
      )
    ).rowCount ?? 0) > 0;
  unfinishedBuilds = () =>
    this.#all<BuildRecord>(
      'builds',
      "SELECT * FROM builds WHERE state IN ('queued', 'running') ORDER BY created_at",
    );

  audit = async (e: AuditEntry) => void (await this.#insert('audit', { ...e, id: undefined }));
  async listAudit(before: number | null, limit: number): Promise<Page<AuditEntry>> {
    const items = await this.#all<AuditEntry>(
      'audit',
      'SELECT * FROM audit WHERE id < $1 ORDER BY id DESC LIMIT $2',
      before ?? Number.MAX_SAFE_INTEGER,
      limit + 1,
    );
    const more = items.length > limit;
    if (more) items.pop();
    return { items, next: more ? String(items[items.length - 1]!.id) : null };
  }

  insertDelivery = async (d: DeliveryRecord) => void (await this.#insert('deliveries', d));
  updateDelivery = (id: string, patch: Partial<DeliveryRecord>) =>
    this.#update('deliveries', 'id', id, patch);
  dueDeliveries = (at: number) =>
    this.#all<DeliveryRecord>(
      'deliveries',
      "SELECT * FROM deliveries WHERE state = 'pending' AND next_at <= $1 ORDER BY next_at",
      at,
    );
  listDeliveries = (limit: number) =>
    this.#all<DeliveryRecord>(
      'deliveries',
      'SELECT * FROM deliveries ORDER BY created_at DESC LIMIT $1',
      limit,
    );
}
