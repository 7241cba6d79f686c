/**
 * Forges that accept a connection and never answer: every request is bounded by the configured
 * connect/idle timeouts (each a retryable failure) and every operation by its deadline.
 */
import { writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { SignetError } from '../../tools/lib/errors.ts';
import { GiteaForge } from '../../tools/lib/forge/gitea.ts';
import { GitHubForge } from '../../tools/lib/forge/github.ts';
import type { RemoteRelease } from '../../tools/lib/forge/types.ts';
import { tempDir } from '../helpers/tmp.ts';

let server: Server;
let base = '';
const sockets = new Set<Socket>();
let connections = 0;
beforeAll(async () => {
  // Accepts, reads whatever comes, never writes a byte.
  server = createServer((s) => {
    connections++;
    sockets.add(s);
    s.on('data', () => {});
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise<void>((r) => server.close(() => r()));
});

const retry = { retries: 2, baseDelayMs: 10, maxDelayMs: 20 };
const release: RemoteRelease = {
  id: 1,
  tag: 'v1.0.0',
  title: '',
  body: '',
  draft: true,
  prerelease: false,
  url: '',
  assets: [],
  uploadUrl: '',
};

function gitea(timeouts: Record<string, number>, scheme = 'http') {
  return new GiteaForge({
    apiUrl: `${scheme}://${base}`,
    owner: 'o',
    repo: 'r',
    token: 'tok-canary-1234',
    retry,
    timeouts,
  });
}
function github(timeouts: Record<string, number>) {
  return new GitHubForge({
    apiUrl: `http://${base}`,
    owner: 'o',
    repo: 'r',
    token: 'tok-canary-1234',
    retry,
    timeouts,
  });
}

async function timed<T>(p: Promise<T>): Promise<{ e: SignetError; ms: number }> {
  const t0 = Date.now();
  const e = (await p.then(
    () => undefined,
    (x: unknown) => x,
  )) as SignetError;
  return { e, ms: Date.now() - t0 };
}

const file = join(tempDir('signet-faults-'), 'agent.exe');
writeFileSync(file, Buffer.alloc(300_000, 7));
const upload = { name: 'agent.exe', path: file, size: 300_000, contentType: 'application/octet-stream' };

describe.each([
  ['gitea', gitea],
  ['github', github],
] as const)('%s against a server that never answers', (_kind, make) => {
  it('listing releases fails after the idle timeout of each attempt, retried', async () => {
    const before = connections;
    const { e, ms } = await timed(
      make({ connectMs: 100, idleMs: 250, deadlineMs: 10_000 }).findReleases('v1.0.0'),
    );
    expect(e.code).toBe('E_FORGE_FAILED');
    expect(e.message).toMatch(/network error/);
    expect(connections - before).toBeGreaterThanOrEqual(3); // first attempt + 2 retries
    expect(ms).toBeGreaterThanOrEqual(700);
    expect(ms).toBeLessThan(5_000);
  });

  it('an upload gives up at the deadline', async () => {
    const { e, ms } = await timed(make({ idleMs: 5_000, deadlineMs: 600 }).uploadAsset(release, upload));
    expect(e.code).toBe('E_FORGE_TIMEOUT');
    expect(e.exitCode).toBe(1);
    expect(ms).toBeGreaterThanOrEqual(550);
    expect(ms).toBeLessThan(3_000);
  });

  it('a download gives up at the deadline', async () => {
    const asset = {
      id: 9,
      name: 'agent.exe',
      size: 1,
      downloadUrl: `http://${base}/o/r/releases/download/v1/agent.exe`,
    };
    const dest = join(tempDir('signet-faults-'), 'out.bin');
    const { e, ms } = await timed(make({ idleMs: 5_000, deadlineMs: 500 }).download(release, asset, dest));
    expect(e.code).toBe('E_FORGE_TIMEOUT');
    expect(ms).toBeLessThan(3_000);
  });
});

describe('connect timeout', () => {
  it('a TLS handshake that never completes fails after connectMs, not idleMs', async () => {
    const before = connections;
    const { e, ms } = await timed(
      gitea({ connectMs: 200, idleMs: 30_000, deadlineMs: 20_000 }, 'https').findReleases('v1'),
    );
    expect(e.code).toBe('E_FORGE_FAILED');
    expect(connections - before).toBe(3);
    expect(ms).toBeLessThan(5_000);
  });
});

describe('publish config', () => {
  it('accepts publish.timeouts and names a bad field', async () => {
    const { publishConfigSchema } = await import('../../tools/lib/forge/config.ts');
    expect(publishConfigSchema.parse({}).timeouts).toEqual({
      connectMs: 30_000,
      idleMs: 120_000,
      deadlineMs: 3_600_000,
    });
    const bad = publishConfigSchema.safeParse({ timeouts: { idleMs: 'soon' } });
    expect(bad.success).toBe(false);
    expect(JSON.stringify(bad.error?.issues[0]?.path)).toBe('["timeouts","idleMs"]');
  });
});
