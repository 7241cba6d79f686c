import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../../../test/helpers/tmp.ts';
import { clearSecrets, registerSecret } from '../redact.ts';
import { hashFileParts, SpawnRunner, sha256File, spawnHelperPid, useSpawnHelper } from './runner.ts';

afterEach(() => clearSecrets());

const alive = (pid: number) => {
  const state = existsSync(`/proc/${pid}/stat`)
    ? readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0]
    : 'gone';
  return !['gone', 'Z', 'X'].includes(state ?? 'gone');
};
const until = async (ok: () => boolean, ms = 5000) => {
  for (const t = Date.now(); !ok() && Date.now() - t < ms; ) await new Promise((r) => setTimeout(r, 20));
  return ok();
};

describe.each([
  ['from this process', false],
  ['from the spawn helper', true],
])('the one runner (exec/runner.ts), programs started %s', (_, viaHelper) => {
  const r = new SpawnRunner();
  let release: (() => void) | undefined;
  beforeAll(() => {
    if (viaHelper) release = useSpawnHelper();
  });
  afterAll(() => release?.());
  it('starts programs where it says', async () => {
    expect(spawnHelperPid() !== undefined).toBe(viaHelper);
    const ppid = await r.run('sh', ['-c', 'cut -d" " -f4 /proc/$$/stat']);
    expect(Number(ppid.stdout.trim())).toBe(viaHelper ? spawnHelperPid() : process.pid);
  });
  it('runs argv arrays, passes input and env, returns output', async () => {
    const out = await r.run('sh', ['-c', 'cat; printf "%s" "$X"'], { input: 'in|', env: { X: 'a b' } });
    expect(out).toMatchObject({ exitCode: 0, stdout: 'in|a b' });
  });
  it('coded errors: missing program, failure (redacted), timeout, allowFailure', async () => {
    registerSecret('s3cr3t-value');
    await expect(r.run('no-such-program-xyz', [])).rejects.toMatchObject({ code: 'E_TOOL_MISSING' });
    const e = await r.run('sh', ['-c', 'echo "bad s3cr3t-value" >&2; exit 3']).catch((x) => x);
    expect(e).toMatchObject({ code: 'E_TOOL_FAILED' });
    expect(e.message).toContain('bad ***');
    expect(e.message).not.toContain('s3cr3t-value');
    await expect(r.run('sleep', ['5'], { timeoutMs: 100 })).rejects.toMatchObject({ code: 'E_TOOL_TIMEOUT' });
    expect((await r.run('sh', ['-c', 'exit 4'], { allowFailure: true })).exitCode).toBe(4);
  });
  it('a timeout kills the whole process group, and declared outputs are deleted', async () => {
    const dir = tempDir();
    const out = join(dir, 'partial.bin');
    const pidFile = join(dir, 'grandchild.pid');
    const e = await r
      .run('sh', ['-c', `echo partial > ${out}; sleep 30 & echo $! > ${pidFile}; wait`], {
        timeoutMs: 300,
        outputs: [out],
      })
      .catch((x) => x);
    expect(e).toMatchObject({ code: 'E_TOOL_TIMEOUT' });
    expect(existsSync(out)).toBe(false);
    const pid = Number(readFileSync(pidFile, 'utf8'));
    await new Promise((ok) => setTimeout(ok, 100));
    // the backgrounded sleep is gone too (or a zombie waiting for a reaper that is not us)
    const state = existsSync(`/proc/${pid}/stat`)
      ? readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0]
      : 'gone';
    expect(['gone', 'Z', 'X']).toContain(state);
  });
  it('binary stdout, env without process.env, and no signal listeners left behind', async () => {
    const b = await r.run('printf', ['\\001\\002'], { binary: true });
    expect([...(b.stdoutBytes ?? [])]).toEqual([1, 2]);
    const env = await r.run('/bin/sh', ['-c', 'printf "%s|%s" "$ONLY" "${HOME:-none}"'], {
      env: { ONLY: 'x' },
      extendEnv: false,
    });
    expect(env.stdout).toBe('x|none');
    expect(process.listenerCount('SIGTERM')).toBe(0);
  });
});

describe('the spawn helper', () => {
  it('hashes files on its core: the digests computed here, and a helper killed meanwhile costs no hash', async () => {
    const dir = tempDir();
    const file = join(dir, 'data.bin');
    const bytes = randomBytes(3 * 1024 * 1024 + 17);
    writeFileSync(file, bytes);
    const whole = createHash('sha256').update(bytes).digest('hex');
    const parts = createHash('sha256')
      .update('ab')
      .update(bytes.subarray(10, 10 + 2_000_000))
      .update('z')
      .digest('hex');
    const of: Parameters<typeof hashFileParts>[2] = [Buffer.from('ab'), [10, 2_000_000], Buffer.from('z')];
    // without a helper, here
    expect(await sha256File(file)).toEqual({ sha256: whole, size: bytes.length });
    expect(await hashFileParts(file, 'sha256', of)).toBe(parts);
    const release = useSpawnHelper();
    try {
      await r.run('true', []); // the helper is ready
      const helperCpu = () =>
        Number(readFileSync(`/proc/${spawnHelperPid()}/stat`, 'utf8').split(') ')[1]!.split(' ')[11]);
      const before = helperCpu();
      for (let i = 0; i < 20; i++) expect((await sha256File(file)).sha256).toBe(whole);
      expect(await hashFileParts(file, 'sha256', of)).toBe(parts);
      // 60 MB hashed: several clock ticks of the helper's own CPU
      expect(helperCpu()).toBeGreaterThan(before);
      // killed with hashes in flight: each is computed here instead, none is lost or wrong
      const inFlight = Array.from({ length: 8 }, () => sha256File(file));
      process.kill(spawnHelperPid()!, 'SIGKILL');
      for (const h of await Promise.all(inFlight)) expect(h.sha256).toBe(whole);
      await expect(sha256File(join(dir, 'missing'))).rejects.toThrow();
    } finally {
      release();
    }
  }, 20_000);
  it('a known prefix: compared instead of hashed when the file starts with it, hashed in full when not', async () => {
    const dir = tempDir();
    const base = join(dir, 'base.bin');
    const baseBytes = randomBytes(2 * 1024 * 1024 + 512);
    writeFileSync(base, baseBytes);
    const length = 2 * 1024 * 1024; // more than one read of the compare
    const prefix = { path: base, length };
    const copy = (name: string, edit: (b: Buffer) => void) => {
      const b = Buffer.concat([baseBytes, randomBytes(700)]);
      edit(b);
      writeFileSync(join(dir, name), b);
      return { path: join(dir, name), sha256: createHash('sha256').update(b).digest('hex'), size: b.length };
    };
    const same = copy('same.bin', () => undefined);
    const tailChanged = copy('tail.bin', (b) => {
      b[length] = (b[length]! + 1) % 256; // the first byte after the prefix
    });
    const early = copy('early.bin', (b) => {
      b[10] = (b[10]! + 1) % 256;
    });
    const late = copy('late.bin', (b) => {
      b[length - 1] = (b[length - 1]! + 1) % 256; // the prefix's last byte, in its second read
    });
    const check = async () => {
      expect(await sha256File(same.path, prefix)).toEqual({
        sha256: same.sha256,
        size: same.size,
        shared: { length, sha256: createHash('sha256').update(baseBytes.subarray(0, length)).digest('hex') },
      });
      expect(await sha256File(tailChanged.path, prefix)).toEqual({
        sha256: tailChanged.sha256,
        size: tailChanged.size,
        shared: { length, sha256: createHash('sha256').update(baseBytes.subarray(0, length)).digest('hex') },
      });
      for (const f of [early, late])
        expect(await sha256File(f.path, prefix)).toEqual({ sha256: f.sha256, size: f.size });
      // shorter than the prefix, and a prefix longer than its file: hashed as they are
      writeFileSync(join(dir, 'short.bin'), baseBytes.subarray(0, 100));
      expect((await sha256File(join(dir, 'short.bin'), prefix)).shared).toBeUndefined();
      expect((await sha256File(same.path, { path: base, length: baseBytes.length + 1 })).sha256).toBe(
        same.sha256,
      );
    };
    await check(); // here
    // a reference that is gone costs the shortcut, never the hash
    expect(await sha256File(same.path, { path: join(dir, 'gone.bin'), length })).toEqual({
      sha256: same.sha256,
      size: same.size,
    });
    // bytes that may differ (a PE's signing fields): hashed in full, compared around them
    const except: [number, number][] = [
      [100, 4],
      [length - 2, 8], // across the prefix's end
    ];
    const fields = copy('fields.bin', (b) => {
      b.fill(7, 100, 104);
      b.fill(9, length - 2, length);
    });
    expect(await sha256File(fields.path, { ...prefix, except })).toEqual({
      sha256: fields.sha256,
      size: fields.size,
      shared: {
        length,
        sha256: createHash('sha256').update(baseBytes.subarray(0, length)).digest('hex'),
        except,
      },
    });
    const outside = copy('outside.bin', (b) => {
      b[104] = (b[104]! + 1) % 256; // the byte past the field
    });
    expect(await sha256File(outside.path, { ...prefix, except })).toEqual({
      sha256: outside.sha256,
      size: outside.size,
    });
    // the base rewritten in place (same size): its new bytes count, not the state read before
    const rewritten = Buffer.from(baseBytes);
    rewritten[5] = (rewritten[5]! + 1) % 256;
    writeFileSync(base, rewritten);
    utimesSync(base, 1_000_000, 1_000_000); // another version, whatever the clock's granularity
    expect((await sha256File(same.path, prefix)).shared).toBeUndefined();
    expect((await sha256File(same.path, prefix)).sha256).toBe(same.sha256);
    writeFileSync(base, baseBytes);
    const release = useSpawnHelper();
    try {
      await r.run('true', []);
      await check(); // on the helper
    } finally {
      release();
    }
  });
  const r = new SpawnRunner();
  it('is shared by its holders and ends with the last release', async () => {
    const a = useSpawnHelper();
    const pid = spawnHelperPid()!;
    const b = useSpawnHelper();
    expect(spawnHelperPid()).toBe(pid);
    a();
    a(); // a second call of one release counts once
    expect(spawnHelperPid()).toBe(pid);
    b();
    expect(spawnHelperPid()).toBeUndefined();
    expect(await until(() => !alive(pid))).toBe(true);
    // programs start from this process again
    expect((await r.run('sh', ['-c', 'cut -d" " -f4 /proc/$$/stat'])).stdout.trim()).toBe(
      String(process.pid),
    );
  });
  it('killed mid-run: the run fails with a coded error, its program is killed, later runs start here', async () => {
    const release = useSpawnHelper();
    try {
      const dir = tempDir();
      const pidFile = join(dir, 'sleep.pid');
      const running = r.run('sh', ['-c', `echo $$ > ${pidFile}; exec sleep 30`]).catch((x) => x);
      expect(await until(() => existsSync(pidFile) && readFileSync(pidFile, 'utf8').trim() !== '')).toBe(
        true,
      );
      const sleeper = Number(readFileSync(pidFile, 'utf8'));
      process.kill(spawnHelperPid()!, 'SIGKILL');
      expect(await running).toMatchObject({ code: 'E_TOOL_FAILED' });
      expect(await until(() => !alive(sleeper))).toBe(true);
      expect(spawnHelperPid()).toBeUndefined();
      expect((await r.run('sh', ['-c', 'echo ok'])).stdout).toBe('ok\n');
    } finally {
      release();
    }
  }, 20_000); // a helper's start and a kill's reaping, on a loaded machine
  it('a helper that dies before it is ready costs no run: the programs start here', async () => {
    const dir = tempDir();
    const broken = join(dir, 'broken-helper.ts');
    writeFileSync(broken, 'process.exit(3);\n');
    const release = useSpawnHelper({ script: broken });
    try {
      const runs = await Promise.all([1, 2, 3].map(() => r.run('sh', ['-c', 'cut -d" " -f4 /proc/$$/stat'])));
      for (const run of runs) expect(run.stdout.trim()).toBe(String(process.pid));
      expect(spawnHelperPid()).toBeUndefined();
    } finally {
      release();
    }
  });
  it('when its caller dies, the programs it started are killed and it exits', async () => {
    const dir = tempDir();
    const pids = join(dir, 'pids');
    const script = join(dir, 'caller.ts');
    writeFileSync(
      script,
      [
        `import { writeFileSync } from 'node:fs';`,
        `import { SpawnRunner, spawnHelperPid, useSpawnHelper } from ${JSON.stringify(new URL('./runner.ts', import.meta.url).pathname)};`,
        `useSpawnHelper();`,
        `void new SpawnRunner().run('sh', ['-c', 'echo ' + spawnHelperPid() + ' $$ > ${pids}; exec sleep 30']);`,
      ].join('\n'),
    );
    const caller = spawn(process.execPath, [script], { stdio: 'ignore' });
    expect(await until(() => existsSync(pids) && readFileSync(pids, 'utf8').includes(' '))).toBe(true);
    const [helper, sleeper] = readFileSync(pids, 'utf8').trim().split(' ').map(Number) as [number, number];
    expect(alive(helper) && alive(sleeper)).toBe(true);
    caller.kill('SIGKILL');
    expect(await until(() => !alive(helper) && !alive(sleeper))).toBe(true);
  });
  it("a SIGTERM that ends the caller reaches the helper's programs, as it reaches programs started here", async () => {
    const dir = tempDir();
    const ready = join(dir, 'ready');
    const got = join(dir, 'got');
    const script = join(dir, 'caller.ts');
    writeFileSync(
      script,
      [
        `import { SpawnRunner, useSpawnHelper } from ${JSON.stringify(new URL('./runner.ts', import.meta.url).pathname)};`,
        `useSpawnHelper();`,
        `void new SpawnRunner().run('sh', ['-c', 'trap "echo TERM > ${got}; exit 0" TERM; echo > ${ready}; sleep 30 & wait']);`,
      ].join('\n'),
    );
    const caller = spawn(process.execPath, [script], { stdio: 'ignore' });
    expect(await until(() => existsSync(ready))).toBe(true);
    await new Promise((ok) => setTimeout(ok, 100)); // the helper has reported the program's pid
    caller.kill('SIGTERM');
    expect(await until(() => existsSync(got))).toBe(true);
    expect(readFileSync(got, 'utf8').trim()).toBe('TERM');
  });
});
