/**
 * Signs files for a child process with this process's Signer. makensis generates the NSIS
 * uninstaller during compilation and runs `!uninstfinalize` on it; that command is a tiny script
 * (sign-client.ts) which asks this server, over a Unix socket in a private 0700 directory, to sign
 * the file in place. The child learns only the socket path and a random per-batch token (both in
 * its environment): no key, password or profile detail ever reaches the .nsi or an argv.
 */
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SignedArtifact } from '../artifact.ts';
import { toSignetError } from '../errors.ts';
import { siblingScript } from '../paths.ts';
import { registerCleanup, releaseCleanup } from '../sign/cleanup.ts';
import type { Signer } from '../sign/types.ts';

/** The client beside this module (see siblingScript). */
export const SIGN_CLIENT = siblingScript(import.meta.url, 'sign-client');

export interface SignServer {
  /** Environment the child needs (SIGNET_SIGN_SOCKET, SIGNET_SIGN_TOKEN). */
  env: Record<string, string>;
  /** Artifacts signed (and verified) through this server, by SHA-256 of the signed bytes. */
  signed: Map<string, SignedArtifact>;
  close(): Promise<void>;
}

export interface SignRequest {
  path: string;
  description?: string;
}

export async function startSignServer(
  signer: Signer,
  options: { description?: string } = {},
): Promise<SignServer> {
  const dir = mkdtempSync(join(tmpdir(), 'signet-sign-'));
  registerCleanup(dir); // removed on exit and on signals too (it holds copies being signed)
  const socket = join(dir, 's');
  const token = randomBytes(24).toString('hex');
  const signed = new Map<string, SignedArtifact>();
  let seq = 0;
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const reply = (status: number, body: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(body));
      };
      if (req.method !== 'POST' || req.headers['authorization'] !== `Bearer ${token}`)
        return reply(403, { ok: false });
      let request: SignRequest;
      try {
        request = JSON.parse(Buffer.concat(chunks).toString('utf8')) as SignRequest;
        if (typeof request.path !== 'string' || !statSync(request.path).isFile())
          throw new Error('bad request');
      } catch {
        return reply(400, { ok: false, error: { code: 'E_USAGE', message: 'bad sign request' } });
      }
      // makensis hands over a temp file without .exe: sign a private .exe copy, then copy back.
      const work = join(dir, `f${++seq}`);
      const copy = `${work}.exe`;
      const signedCopy = `${work}-signed.exe`;
      try {
        copyFileSync(request.path, copy);
        const description = request.description ?? options.description;
        const artifact = await signer.sign(copy, {
          out: signedCopy,
          ...(description ? { description } : {}),
        });
        copyFileSync(signedCopy, request.path);
        signed.set(artifact.sha256, artifact);
        reply(200, { ok: true, sha256: artifact.sha256 });
      } catch (e) {
        const err = toSignetError(e);
        reply(500, { ok: false, error: { code: err.code, message: err.message } });
      } finally {
        rmSync(copy, { force: true });
        rmSync(signedCopy, { force: true });
      }
    });
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(socket, ok);
  });
  return {
    env: { SIGNET_SIGN_SOCKET: socket, SIGNET_SIGN_TOKEN: token },
    signed,
    close: async () => {
      await new Promise<void>((ok) => server.close(() => ok()));
      releaseCleanup(dir);
    },
  };
}

/** The sh script makensis runs as `"<script>" "%1"`: it only starts the client with node. */
export function signScriptText(node = process.execPath, client = SIGN_CLIENT): string {
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  return `#!/bin/sh\n# Signs "$1" in place through Signet's signer (no secret here: see sign-server.ts)\nexec ${q(node)} ${q(client)} "$1"\n`;
}
