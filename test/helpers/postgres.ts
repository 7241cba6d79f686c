/**
 * A private PostgreSQL server for tests: Debian's postgresql binaries, a fresh cluster in a
 * temporary folder (initdb, trust authentication on loopback only), started on a free port and
 * stopped after. PostgreSQL refuses to run as root, so as root the cluster belongs to the
 * `postgres` system user the Debian package creates.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface PgServer {
  url: string;
  port: number;
  dir: string;
  stop(mode?: 'fast' | 'immediate'): void;
  start(): void;
}

export function postgresBin(): string | undefined {
  const base = '/usr/lib/postgresql';
  if (!existsSync(base)) return undefined;
  const versions = readdirSync(base)
    .filter((v) => existsSync(join(base, v, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a));
  return versions[0] ? join(base, versions[0], 'bin') : undefined;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

function asOwner(cmd: string, args: string[]): string[] {
  if (process.getuid?.() !== 0) return [cmd, ...args];
  return ['runuser', '-u', 'postgres', '--', cmd, ...args];
}

function run(argv: string[]): void {
  const r = spawnSync(argv[0]!, argv.slice(1), { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${argv.join(' ')} failed: ${r.stderr || r.stdout}`);
}

export async function startPostgres(): Promise<PgServer> {
  const bin = postgresBin();
  if (!bin)
    throw new Error(
      'PostgreSQL server binaries not found under /usr/lib/postgresql (apt-get install postgresql)',
    );
  const dir = mkdtempSync(join(tmpdir(), 'signet-pg-'));
  const data = join(dir, 'data');
  if (process.getuid?.() === 0) {
    const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim());
    const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim());
    chownSync(dir, uid, gid);
  }
  chmodSync(dir, 0o700);
  run(asOwner(join(bin, 'initdb'), ['-D', data, '-U', 'signet', '--auth=trust', '-E', 'UTF8', '--no-sync']));
  const port = await freePort();
  const start = () =>
    run(
      asOwner(join(bin, 'pg_ctl'), [
        '-D',
        data,
        '-w',
        '-l',
        join(dir, 'log'),
        '-o',
        `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off`,
        'start',
      ]),
    );
  start();
  run(asOwner(join(bin, 'createdb'), ['-h', '127.0.0.1', '-p', String(port), '-U', 'signet', 'signet']));
  return {
    url: `postgres://signet@127.0.0.1:${port}/signet`,
    port,
    dir,
    start,
    stop(mode = 'fast') {
      spawnSync(
        asOwner(join(bin, 'pg_ctl'), ['-D', data, '-m', mode, '-w', 'stop'])[0]!,
        asOwner(join(bin, 'pg_ctl'), ['-D', data, '-m', mode, '-w', 'stop']).slice(1),
      );
    },
  };
}

export function removePostgres(s: PgServer): void {
  s.stop('immediate');
  rmSync(s.dir, { recursive: true, force: true });
}
