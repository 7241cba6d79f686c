/**
 * A private Redis for tests: Debian's redis-server on a free loopback port, append-only file in a
 * temporary folder (so a restart keeps the queue, as a production Redis with persistence would),
 * started and stopped by the test.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from './postgres.ts';

export interface RedisServer {
  url: string;
  port: number;
  start(): Promise<void>;
  /** SIGTERM: Redis writes its append-only file and exits. */
  stop(): Promise<void>;
  remove(): Promise<void>;
}

function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createConnection({ host: '127.0.0.1', port }, () => s.write('PING\r\n'));
    s.on('data', (d) => {
      resolve(String(d).startsWith('+PONG'));
      s.destroy();
    });
    s.on('error', () => resolve(false));
  });
}

export async function startRedis(): Promise<RedisServer> {
  const dir = mkdtempSync(join(tmpdir(), 'signet-redis-'));
  const port = await freePort();
  let child: ChildProcess | undefined;
  const server: RedisServer = {
    url: `redis://127.0.0.1:${port}`,
    port,
    async start() {
      child = spawn(
        'redis-server',
        [
          '--port',
          String(port),
          '--bind',
          '127.0.0.1',
          '--dir',
          dir,
          '--appendonly',
          'yes',
          '--save',
          '',
          '--daemonize',
          'no',
          '--loglevel',
          'warning',
        ],
        { stdio: 'ignore' },
      );
      for (let i = 0; i < 100; i++) {
        if (await ping(port)) return;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error('redis-server did not start');
    },
    async stop() {
      if (!child || child.exitCode !== null) return;
      const exited = new Promise((r) => child!.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    },
    async remove() {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
  await server.start();
  return server;
}
