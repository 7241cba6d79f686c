/**
 * A TEST DOUBLE of the `ServiceApi` interface (tools/lib/app/service/types.ts), in memory, for
 * the HTTP adapter's tests: tokens with scopes, expiry and revocation; "signed" agents are any
 * body starting with `MZ` and containing `SIGNED`; installers are deterministic bytes per site,
 * kind, release and key version; links expire and die on rotation; builds finish at once. It
 * throws the same coded SignetErrors as the real use cases. The real implementation
 * (createService) is tested by the use-case tests and the service's integration tests.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import type {
  Actor,
  BuildView,
  Health,
  InstallerFile,
  LinkView,
  ReleaseView,
  ServiceApi,
  SiteInput,
  SiteView,
  TokenStatus,
} from '../../tools/lib/app/service/types.ts';
import { type ErrorCode, SignetError } from '../../tools/lib/errors.ts';
import type {
  AuditEntry,
  Channel,
  DeliveryRecord,
  OutputKind,
  Scope,
  TokenRecord,
} from '../../tools/lib/service-store/types.ts';

const sha = (b: Buffer | string) => createHash('sha256').update(b).digest('hex');
const iso = (n: number | null) => (n === null ? null : new Date(n).toISOString());

async function readAll(body: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

export interface FakeSite {
  view: SiteView;
  key: string;
}

export class FakeServiceApi implements ServiceApi {
  now = Date.parse('2030-01-01T00:00:00Z');
  tokens: { record: TokenRecord; secret: string }[] = [];
  releases: (ReleaseView & { agent: Buffer })[] = [];
  sites = new Map<string, FakeSite>();
  links = new Map<string, LinkView & { createdKeyVersion: number }>();
  builds = new Map<string, BuildView>();
  auditLog: AuditEntry[] = [];
  deliveryLog: DeliveryRecord[] = [];
  ready = true;
  closed = false;
  /** Files handed to /v1/sign and whether their cleanup ran. */
  signed: { path: string; cleaned: boolean }[] = [];
  /** Set to make the next call throw something unexpected (a bug). */
  explode: string | undefined;
  /** Calls, by method name. */
  calls: string[] = [];
  private dir = mkdtempSync(join(tmpdir(), 'signet-fake-service-'));

  private fail(code: ErrorCode, message: string, details?: Record<string, unknown>): never {
    throw new SignetError(code, message, details ? { details } : {});
  }
  private call(name: string): void {
    this.calls.push(name);
    if (this.explode) {
      const m = this.explode;
      this.explode = undefined;
      throw new TypeError(m);
    }
  }
  private record(actor: Actor, action: string, result: string, siteCode: string | null = null): void {
    this.auditLog.unshift({
      id: this.auditLog.length + 1,
      at: this.now,
      actorKind: actor.kind,
      actor: actor.name,
      ip: actor.ip,
      action,
      siteCode,
      result,
      detail: null,
    });
  }

  // tokens
  async createToken(input: { name: string; scopes: Scope[]; expiresInMs?: number }) {
    this.call('createToken');
    if (this.tokens.some((t) => t.record.name === input.name))
      this.fail('E_CONFLICT', `a token named ${input.name} exists`);
    const secret = `sgn_${randomBytes(32).toString('base64url')}`;
    const record: TokenRecord = {
      id: `tok_${randomBytes(6).toString('hex')}`,
      name: input.name,
      hash: sha(secret),
      scopes: input.scopes,
      createdAt: this.now,
      expiresAt: input.expiresInMs ? this.now + input.expiresInMs : null,
      revokedAt: null,
      lastUsedAt: null,
    };
    this.tokens.push({ record, secret });
    return { token: secret, status: this.tokenStatus(record) };
  }
  async listTokens() {
    this.call('listTokens');
    return this.tokens.map((t) => this.tokenStatus(t.record));
  }
  async revokeToken(nameOrId: string) {
    this.call('revokeToken');
    const t = this.tokens.find((x) => x.record.name === nameOrId || x.record.id === nameOrId);
    if (!t) this.fail('E_NOT_FOUND', `no token ${nameOrId}`);
    t.record.revokedAt ??= this.now;
    return this.tokenStatus(t.record);
  }
  async authenticate(bearer: string | undefined, ip: string) {
    this.call('authenticate');
    if (!bearer) this.fail('E_AUTH_MISSING', 'this route needs a bearer token');
    const t = this.tokens.find((x) => x.record.hash === sha(bearer));
    if (!t || t.record.revokedAt !== null || (t.record.expiresAt !== null && t.record.expiresAt <= this.now))
      this.fail('E_AUTH_INVALID', 'the token is unknown, expired or revoked');
    t.record.lastUsedAt = this.now;
    const actor: Actor = { kind: 'token', name: t.record.name, ip, scopes: t.record.scopes };
    return { actor, token: t.record };
  }
  requireScope(actor: Actor, scope: Scope) {
    if (actor.scopes.includes('admin') || actor.scopes.includes(scope)) return;
    this.fail('E_AUTH_SCOPE', `this needs the scope ${scope}`, { scope });
  }
  tokenStatus(t: TokenRecord): TokenStatus {
    return {
      id: t.id,
      name: t.name,
      scopes: t.scopes,
      createdAt: iso(t.createdAt)!,
      expiresAt: iso(t.expiresAt),
      lastUsedAt: iso(t.lastUsedAt),
      revokedAt: iso(t.revokedAt),
      active: t.revokedAt === null && (t.expiresAt === null || t.expiresAt > this.now),
    };
  }

  // releases
  async uploadRelease(actor: Actor, input: { version: string; channel: Channel; body: Readable }) {
    this.call('uploadRelease');
    const agent = await readAll(input.body);
    if (agent.subarray(0, 2).toString() !== 'MZ' || !agent.includes('SIGNED'))
      this.fail('E_VERIFY_UNSIGNED', 'the agent carries no Authenticode signature');
    if (this.releases.some((r) => r.version === input.version && r.channel === input.channel))
      this.fail('E_CONFLICT', `release ${input.version} (${input.channel}) exists`);
    for (const r of this.releases) if (r.channel === input.channel) r.current = false;
    const release = {
      id: `rel_${this.releases.length + 1}`,
      version: input.version,
      channel: input.channel,
      agentSha256: sha(agent),
      agentSize: agent.length,
      signer: { subject: 'CN=Fake Signer', leafSha256: 'ab'.repeat(32) },
      timestamp: new Date(this.now).toISOString(),
      createdAt: new Date(this.now).toISOString(),
      current: true,
      agent,
    };
    this.releases.push(release);
    this.record(actor, 'release.upload', 'ok');
    return this.releaseView(release);
  }
  private releaseView(r: ReleaseView & { agent?: Buffer }): ReleaseView {
    const { agent: _agent, ...view } = r;
    return view;
  }
  async listReleases() {
    this.call('listReleases');
    return this.releases.map((r) => this.releaseView(r));
  }
  private release(channel: Channel, version?: string) {
    const r = version
      ? this.releases.find((x) => x.channel === channel && x.version === version)
      : this.releases.find((x) => x.channel === channel && x.current);
    if (!r) this.fail('E_NO_RELEASE', `no ${channel} release${version ? ` ${version}` : ''}`);
    return r;
  }

  // sites
  async putSite(actor: Actor, siteCode: string, input: SiteInput) {
    this.call('putSite');
    const existing = this.sites.get(siteCode);
    if (!/^https:\/\//.test(input.serverUrl))
      this.fail('E_INPUT_INVALID', 'serverUrl must be https://', { field: 'serverUrl' });
    let rotated = false;
    if (!existing && !input.enrollmentKey)
      this.fail('E_INPUT_INVALID', 'a new site needs its enrollmentKey', { field: 'enrollmentKey' });
    if (existing) {
      if (input.keyVersion < existing.view.keyVersion)
        this.fail(
          'E_KEY_VERSION',
          `keyVersion ${input.keyVersion} is older than the site's ${existing.view.keyVersion}`,
        );
      if (input.keyVersion > existing.view.keyVersion) {
        if (input.keyVersion !== existing.view.keyVersion + 1 || !input.enrollmentKey)
          this.fail('E_KEY_VERSION', `a new enrollment key needs keyVersion ${existing.view.keyVersion + 1}`);
        rotated = true;
      }
    }
    const key = input.enrollmentKey ?? existing!.key;
    const at = new Date(this.now).toISOString();
    const view: SiteView = {
      siteCode,
      serverUrl: input.serverUrl,
      company: input.company ?? '',
      siteName: input.siteName ?? '',
      department: input.department ?? '',
      deviceType: input.deviceType ?? '',
      tags: input.tags ?? [],
      keyVersion: input.keyVersion,
      fingerprint: `v${input.keyVersion} (${sha(key).slice(0, 4).toUpperCase()})`,
      createdAt: existing?.view.createdAt ?? at,
      updatedAt: at,
    };
    // a record with more than the view (the key) to show that the adapter's schema drops it
    this.sites.set(siteCode, { view: { ...view, enrollmentKey: key } as SiteView, key });
    this.record(actor, rotated ? 'site.rotate' : 'site.put', 'ok', siteCode);
    return { site: { ...view, enrollmentKey: key } as SiteView, created: !existing, rotated };
  }
  async getSite(siteCode: string) {
    this.call('getSite');
    const s = this.sites.get(siteCode);
    if (!s) this.fail('E_NOT_FOUND', `no site ${siteCode}`, { siteCode });
    return s.view;
  }
  async listSites(cursor: string | null, limit: number) {
    this.call('listSites');
    const all = [...this.sites.keys()].sort().filter((c) => cursor === null || c > cursor);
    const items = all.slice(0, limit).map((c) => this.sites.get(c)!.view);
    return { items, next: all.length > limit ? items.at(-1)!.siteCode : null };
  }
  async deleteSite(actor: Actor, siteCode: string) {
    this.call('deleteSite');
    if (!this.sites.delete(siteCode)) this.fail('E_NOT_FOUND', `no site ${siteCode}`);
    this.record(actor, 'site.delete', 'ok', siteCode);
  }

  // installers and links
  /** The bytes of a site's installer (deterministic: tests compare them). */
  installerBytes(siteCode: string, kind: OutputKind, version: string, keyVersion: number): Buffer {
    const head = Buffer.from(kind === 'exe' ? 'MZ' : '\xd0\xcf\x11\xe0', 'latin1');
    const seed = `${siteCode}|${kind}|${version}|${keyVersion}|`;
    const filler = Buffer.alloc(4096 + (siteCode.length % 7) * 100);
    for (let i = 0; i < filler.length; i++) filler[i] = (seed.charCodeAt(i % seed.length) + i) & 0xff;
    return Buffer.concat([head, Buffer.from(seed), filler]);
  }
  /** The bytes as a file of the fake's folder (named by their SHA-256). */
  private written(bytes: Buffer): string {
    const path = join(this.dir, `blob-${sha(bytes)}`);
    writeFileSync(path, bytes);
    return path;
  }
  private file(siteCode: string, kind: OutputKind, channel: Channel, version?: string): InstallerFile {
    const s = this.sites.get(siteCode);
    if (!s) this.fail('E_NOT_FOUND', `no site ${siteCode}`);
    const r = this.release(channel, version);
    const bytes = this.installerBytes(siteCode, kind, r.version, s.view.keyVersion);
    return {
      kind,
      fileName: `agent-${siteCode}-${r.version}-v${s.view.keyVersion}-${s.view.fingerprint.slice(-5, -1)}.${kind}`,
      sha256: sha(bytes),
      size: bytes.length,
      release: { version: r.version, channel: r.channel },
      siteCode,
      keyVersion: s.view.keyVersion,
      open: (range) => Readable.from([range ? bytes.subarray(range.start, range.end + 1) : bytes]),
      path: this.written(bytes),
    };
  }
  async installer(
    actor: Actor,
    input: { siteCode: string; kind: OutputKind; channel: Channel; version?: string },
  ) {
    this.call('installer');
    const f = this.file(input.siteCode, input.kind, input.channel, input.version);
    this.record(actor, 'installer.download', 'ok', input.siteCode);
    return f;
  }
  async createLink(
    actor: Actor,
    siteCode: string,
    input: { kind: OutputKind; channel?: Channel; version?: string; expiresInMs: number },
  ) {
    this.call('createLink');
    const s = this.sites.get(siteCode);
    if (!s) this.fail('E_NOT_FOUND', `no site ${siteCode}`);
    this.release(input.channel ?? 'stable', input.version);
    const token = `sgl_${randomBytes(32).toString('base64url')}`;
    const link = {
      id: `lnk_${this.links.size + 1}`,
      url: `http://fake.invalid/dl/${token}`,
      siteCode,
      kind: input.kind,
      channel: input.channel ?? 'stable',
      version: input.version ?? null,
      keyVersion: s.view.keyVersion,
      expiresAt: new Date(this.now + input.expiresInMs).toISOString(),
      createdKeyVersion: s.view.keyVersion,
    };
    this.links.set(token, link);
    this.record(actor, 'link.create', 'ok', siteCode);
    const { createdKeyVersion: _k, ...view } = link;
    return { ...view, url: `/dl/${token}` };
  }
  async installerByLink(linkToken: string, ip: string) {
    this.call('installerByLink');
    const link = this.links.get(linkToken);
    const actor: Actor = { kind: 'link', name: link?.id ?? '-', ip, scopes: [] };
    const refuse = (why: string): never => {
      this.record(actor, 'link.download', `refused: ${why}`, link?.siteCode ?? null);
      this.fail('E_LINK_INVALID', `this download link is not valid (${why})`);
    };
    if (!link) return refuse('unknown');
    if (Date.parse(link.expiresAt) <= this.now) return refuse('expired');
    const site = this.sites.get(link.siteCode);
    if (!site) return refuse('site deleted');
    if (site.view.keyVersion !== link.keyVersion) return refuse('site key rotated');
    const f = this.file(link.siteCode, link.kind, link.channel, link.version ?? undefined);
    this.record(actor, 'link.download', 'ok', link.siteCode);
    return f;
  }

  // builds
  async startBuild(actor: Actor, input: { channel?: Channel; version?: string; sites: string[] | 'all' }) {
    this.call('startBuild');
    const r = this.release(input.channel ?? 'stable', input.version);
    const codes = input.sites === 'all' ? [...this.sites.keys()] : input.sites;
    const results = codes.map((siteCode) => {
      if (!this.sites.has(siteCode))
        return { siteCode, ok: false, error: { code: 'E_NOT_FOUND', message: `no site ${siteCode}` } };
      const exe = this.file(siteCode, 'exe', r.channel, r.version);
      const msi = this.file(siteCode, 'msi', r.channel, r.version);
      return {
        siteCode,
        ok: true,
        exe: { sha256: exe.sha256, size: exe.size, fileName: exe.fileName },
        msi: { sha256: msi.sha256, size: msi.size, fileName: msi.fileName },
      };
    });
    const build: BuildView = {
      id: `bld_${this.builds.size + 1}`,
      state: 'completed',
      release: { version: r.version, channel: r.channel },
      total: codes.length,
      done: results.filter((x) => x.ok).length,
      failed: results.filter((x) => !x.ok).length,
      results,
      createdAt: new Date(this.now).toISOString(),
      finishedAt: new Date(this.now).toISOString(),
    };
    this.builds.set(build.id, build);
    this.record(actor, 'build.start', 'ok');
    return build;
  }
  async getBuild(id: string) {
    this.call('getBuild');
    const b = this.builds.get(id);
    if (!b) this.fail('E_NOT_FOUND', `no build ${id}`);
    return b;
  }

  // signing
  async sign(actor: Actor, input: { fileName: string; body: Readable; nest?: boolean }) {
    this.call('sign');
    const data = await readAll(input.body);
    if (data.subarray(0, 2).toString() !== 'MZ')
      this.fail('E_SIGN_UNSUPPORTED', `${input.fileName} is not a PE or MSI`);
    const out = Buffer.concat([data, Buffer.from(`SIGNED${input.nest ? '+NEST' : ''}`)]);
    const path = join(this.dir, `${this.signed.length}-${randomBytes(4).toString('hex')}.signed`);
    writeFileSync(path, out);
    const entry = { path, cleaned: false };
    this.signed.push(entry);
    this.record(actor, 'sign', 'ok');
    return {
      path,
      sha256: sha(out),
      size: out.length,
      cleanup: () => {
        entry.cleaned = true;
        rmSync(path, { force: true });
      },
    };
  }

  // operations
  async audit(cursor: string | null, limit: number) {
    this.call('audit');
    const start = cursor ? Number(cursor) : 0;
    const items = this.auditLog.slice(start, start + limit);
    return { items, next: start + limit < this.auditLog.length ? String(start + limit) : null };
  }
  async deliveries(limit: number) {
    this.call('deliveries');
    return this.deliveryLog.slice(0, limit);
  }
  async health(): Promise<Health> {
    return { ok: !this.closed, checks: [{ name: 'process', ok: !this.closed }] };
  }
  async readiness(): Promise<Health> {
    return {
      ok: this.ready,
      checks: [{ name: 'database', ok: this.ready, ...(this.ready ? {} : { detail: 'database is locked' }) }],
    };
  }
  async metrics() {
    return {
      contentType: 'text/plain; version=0.0.4',
      text: '# HELP signet_fake_builds_total Fake\n# TYPE signet_fake_builds_total counter\nsignet_fake_builds_total 3\n',
    };
  }
  async settled() {}
  async collectGarbage() {
    return { outputs: 0, blobs: 0, evicted: 0 };
  }
  async close() {
    this.closed = true;
    rmSync(this.dir, { recursive: true, force: true });
  }
}
