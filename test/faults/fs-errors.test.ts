/**
 * The operating system refusing a file operation is an environment error (exit 4) naming the
 * path and the fix, never `[E_INTERNAL] … a bug in Signet`. Read-only and full disks are real
 * tmpfs mounts (root in the test machine); an immutable file is `chattr +i`.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { fsError } from '../../tools/lib/errors.ts';
import { tempDir } from '../helpers/tmp.ts';
import { errorCode, type Run, signet } from './cli.ts';

const dir = tempDir('signet-fs-faults-');
const mounted: string[] = [];

function tryRun(cmd: string, args: string[]): boolean {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
/** A small tmpfs at `path` (options e.g. 'ro' or 'size=16k'); false when this machine cannot mount. */
function mountTmpfs(path: string, options: string): boolean {
  mkdirSync(path, { recursive: true });
  const ok = tryRun('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', path]);
  if (ok) mounted.push(path);
  return ok;
}
afterAll(() => {
  for (const m of mounted) tryRun('umount', [m]);
});

function expectEnvironment(r: Run, code: string, path: string) {
  expect(r.stderr).not.toContain('E_INTERNAL');
  expect(r.stderr).not.toMatch(/bug in Signet/);
  expect(errorCode(r), r.stderr).toBe(code);
  expect(r.code).toBe(4);
  expect(r.stderr).toContain(path);
}

describe('OS file errors through the CLI', () => {
  it('a read-only folder (EROFS, read-only tmpfs) → E_FS_READ_ONLY', async (t) => {
    const ro = join(dir, 'ro');
    if (!mountTmpfs(ro, 'ro,size=64k')) t.skip();
    const r = await signet(dir, ['schema', '--out', join(ro, 'schema.json')]);
    expectEnvironment(r, 'E_FS_READ_ONLY', join(ro, 'schema.json'));
    expect(r.stderr).toMatch(/hint: .*read-only file system: remount it read-write/);
  });

  it('a full disk (ENOSPC, 16 KiB tmpfs) → E_FS_NO_SPACE', async (t) => {
    const full = join(dir, 'full');
    if (!mountTmpfs(full, 'size=16k')) t.skip();
    const r = await signet(dir, ['schema', '--out', join(full, 'schema.json')]);
    expect(r.stderr).not.toContain('E_INTERNAL');
    expect(errorCode(r), r.stderr).toBe('E_FS_NO_SPACE');
    expect(r.code).toBe(4);
  });

  it('an immutable file (chattr +i, EPERM) → E_FS_PERMISSION naming the file', async (t) => {
    const file = join(dir, 'immutable.json');
    writeFileSync(file, 'keep\n');
    if (!tryRun('chattr', ['+i', file])) t.skip();
    try {
      const r = await signet(dir, ['schema', '--out', file]);
      expectEnvironment(r, 'E_FS_PERMISSION', file);
      expect(r.stderr).toContain('chattr -i');
      expect(readFileSync(file, 'utf8')).toBe('keep\n');
    } finally {
      tryRun('chattr', ['-i', file]);
    }
  });

  it('publish --to dir: pointing at a file → E_FS_WRONG_TYPE', async () => {
    const work = join(dir, 'pub');
    mkdirSync(work);
    writeFileSync(join(work, 'notes.txt'), 'hi\n');
    writeFileSync(join(work, 'blocker'), 'a file\n');
    const r = await signet(work, [
      'publish',
      'notes.txt',
      '--to',
      'dir:blocker',
      '--tag',
      'v1.0.0',
      '--repo',
      'o/r',
    ]);
    expectEnvironment(r, 'E_FS_WRONG_TYPE', join(work, 'blocker'));
  });

  it('verify on a directory → E_FS_WRONG_TYPE, exit 4', async () => {
    const r = await signet(dir, ['verify', dir]);
    expect(r.stdout + r.stderr).toContain('E_FS_WRONG_TYPE');
    expect(r.stdout + r.stderr).not.toContain('E_INTERNAL');
    expect(r.code).toBe(4);
  });

  it('verify on a named pipe returns at once instead of blocking', async () => {
    const fifo = join(dir, 'pipe.exe');
    execFileSync('mkfifo', [fifo]);
    const r = await signet(dir, ['verify', fifo, '--json'], {}, 20_000);
    expect(r.ms).toBeLessThan(15_000);
    expect(JSON.parse(r.stdout).files[0].error.code).toBe('E_FS_WRONG_TYPE');
    expect(r.code).toBe(4);
  });
});

describe('fsError', () => {
  it('maps errno codes to coded errors and leaves the rest (E_INTERNAL stays for bugs)', () => {
    const e = (code: string, syscall: string, path?: string) =>
      Object.assign(new Error(code), { code, syscall, ...(path ? { path } : {}) });
    expect(fsError(e('EACCES', 'open', '/x'))?.code).toBe('E_FS_PERMISSION');
    expect(fsError(e('EACCES', 'open', '/x'))?.hint).toContain('/x');
    expect(fsError(e('EISDIR', 'open', '/d'))?.exitCode).toBe(4);
    expect(fsError(e('EEXIST', 'open', '/f'))?.code).toBe('E_FILE_EXISTS');
    expect(fsError(e('EEXIST', 'mkdir', '/f'))?.code).toBe('E_FS_WRONG_TYPE');
    expect(fsError(e('ENOENT', 'spawn osslsigncode'))).toBeUndefined();
    expect(fsError(e('ECONNREFUSED', 'connect'))).toBeUndefined();
    expect(fsError(new TypeError('x is undefined'))).toBeUndefined();
  });
});
