/**
 * Versioned schema migrations of the embedded store. Append a new entry for every change; never
 * edit an applied one (a database records the versions it has).
 */
export interface Migration {
  version: number;
  sql: string;
}

export const MIGRATIONS: Migration[] = [
  {
    version: 1,
    sql: `
CREATE TABLE tokens (
  id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE, hash TEXT NOT NULL UNIQUE, scopes TEXT NOT NULL,
  created_at INTEGER NOT NULL, expires_at INTEGER, revoked_at INTEGER, last_used_at INTEGER
);
CREATE TABLE releases (
  id TEXT PRIMARY KEY, version TEXT NOT NULL, channel TEXT NOT NULL, agent_sha256 TEXT NOT NULL,
  agent_size INTEGER NOT NULL, signer_subject TEXT NOT NULL, signer_leaf_sha256 TEXT NOT NULL,
  timestamp TEXT, created_at INTEGER NOT NULL, UNIQUE (version, channel)
);
CREATE TABLE sites (
  site_code TEXT PRIMARY KEY, fields TEXT NOT NULL, key_version INTEGER NOT NULL,
  key_ciphertext TEXT NOT NULL, fingerprint TEXT NOT NULL, created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE TABLE outputs (
  key TEXT PRIMARY KEY, site_code TEXT NOT NULL, release_id TEXT NOT NULL, key_version INTEGER NOT NULL,
  kind TEXT NOT NULL, state TEXT NOT NULL, sha256 TEXT, size INTEGER, file_name TEXT, error TEXT,
  created_at INTEGER NOT NULL, verified_at INTEGER
);
CREATE INDEX outputs_site ON outputs (site_code);
CREATE TABLE links (
  id TEXT PRIMARY KEY, hash TEXT NOT NULL UNIQUE, site_code TEXT NOT NULL, kind TEXT NOT NULL,
  channel TEXT NOT NULL, version TEXT, key_version INTEGER NOT NULL, created_by TEXT NOT NULL,
  created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL, revoked_at INTEGER
);
CREATE INDEX links_site ON links (site_code);
CREATE TABLE builds (
  id TEXT PRIMARY KEY, release_id TEXT NOT NULL, sites TEXT NOT NULL, state TEXT NOT NULL,
  results TEXT NOT NULL, created_by TEXT NOT NULL, created_at INTEGER NOT NULL, finished_at INTEGER
);
CREATE TABLE audit (
  id INTEGER PRIMARY KEY AUTOINCREMENT, at INTEGER NOT NULL, actor_kind TEXT NOT NULL, actor TEXT NOT NULL,
  ip TEXT NOT NULL, action TEXT NOT NULL, site_code TEXT, result TEXT NOT NULL, detail TEXT
);
CREATE TABLE deliveries (
  id TEXT PRIMARY KEY, event TEXT NOT NULL, url TEXT NOT NULL, payload TEXT NOT NULL,
  attempts INTEGER NOT NULL, state TEXT NOT NULL, last_status INTEGER, last_error TEXT,
  next_at INTEGER NOT NULL, created_at INTEGER NOT NULL, delivered_at INTEGER
);
`,
  },
  {
    version: 2,
    sql: `
ALTER TABLE outputs ADD COLUMN lease_until INTEGER;
ALTER TABLE outputs ADD COLUMN built_by TEXT;
CREATE TABLE build_results (
  build_id TEXT NOT NULL, site_code TEXT NOT NULL, ok INTEGER NOT NULL, result TEXT NOT NULL,
  at INTEGER NOT NULL, PRIMARY KEY (build_id, site_code)
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
