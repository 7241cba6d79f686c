/**
 * The Gitea token travels only to the API's origin: an attachment's browser_download_url is data
 * from the server and may name any host.
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../../../test/helpers/tmp.ts';
import { GiteaForge } from './gitea.ts';
import type { RemoteRelease } from './types.ts';

const TOKEN = 'gitea-token-canary-5f1e';
const payload = Buffer.from('agent bytes');
const seen: { server: string; url: string; headers: IncomingHttpHeaders }[] = [];

function serve(name: string): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    seen.push({ server: name, url: req.url ?? '', headers: req.headers });
    res.writeHead(200, { 'content-length': String(payload.length) }).end(payload);
  });
  return new Promise((r) =>
    server.listen(0, '127.0.0.1', () =>
      r({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }),
    ),
  );
}

let api: { server: Server; url: string };
let other: { server: Server; url: string };
beforeAll(async () => {
  api = await serve('api');
  other = await serve('other');
});
afterAll(async () => {
  for (const s of [api, other]) await new Promise<void>((r) => s.server.close(() => r()));
});

const release: RemoteRelease = {
  id: 1,
  tag: 'v1.0.0',
  title: '',
  body: '',
  draft: false,
  prerelease: false,
  url: '',
  assets: [],
};

describe('gitea download credentials', () => {
  const forge = () => new GiteaForge({ apiUrl: api.url, owner: 'o', repo: 'r', token: TOKEN });
  const sha = createHash('sha256').update(payload).digest('hex');

  it('sends no token to a browser_download_url on another origin', async () => {
    seen.length = 0;
    const asset = { id: 1, name: 'a.exe', size: payload.length, downloadUrl: `${other.url}/steal/a.exe` };
    const got = await forge().download(release, asset, join(tempDir('signet-gitea-'), 'a.exe'));
    expect(got.sha256).toBe(sha);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.server).toBe('other');
    expect(seen[0]!.headers.authorization).toBeUndefined();
    expect(JSON.stringify(seen)).not.toContain(TOKEN);
  });

  it('still sends it to the API origin (private repositories)', async () => {
    seen.length = 0;
    const asset = {
      id: 1,
      name: 'a.exe',
      size: payload.length,
      downloadUrl: `${api.url}/o/r/releases/download/v1.0.0/a.exe`,
    };
    expect(await forge().readBackSha256(release, asset)).toBe(sha);
    expect(seen[0]!.server).toBe('api');
    expect(seen[0]!.headers.authorization).toBe(`token ${TOKEN}`);
  });
});
