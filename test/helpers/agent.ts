/**
 * Builds the tiny Windows service agent of test/fixtures/agent with mingw-w64, cached by the hash
 * of everything that goes into it (sources, options, compiler version), so repeated test runs and
 * parallel test files reuse one build. `padMiB` appends an incompressible, deterministic blob
 * (for the 10 MB / 50 MB agents of the benchmarks).
 */
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defaultRunner } from '../../tools/lib/exec/runner.ts';

const FIXTURE = join(dirname(fileURLToPath(import.meta.url)), '..', 'fixtures', 'agent');

export interface AgentOptions {
  /** x.y.z (written to the VERSIONINFO resource and printed by `agent version`). */
  version?: string;
  serviceName?: string;
  /** Pad the executable with this many MiB of deterministic incompressible bytes. */
  padMiB?: number;
  /** Directory of the cache (default: $SIGNET_AGENT_CACHE or <tmp>/signet-agent-cache). */
  cacheDir?: string;
}

function assertSafe(value: string, what: string, re: RegExp): string {
  if (!re.test(value)) throw new Error(`test agent: bad ${what}: ${value}`);
  return value;
}

function padBlob(path: string, mib: number): void {
  // A counter-mode SHA-256 stream: deterministic, incompressible, fast enough (10 MiB in ~30 ms).
  const out = Buffer.allocUnsafe(mib * 1024 * 1024);
  for (let off = 0, i = 0; off < out.length; i++) {
    const block = createHash('sha256').update(`signet-pad-${i}`).digest();
    off += block.copy(out, off);
  }
  writeFileSync(path, out);
}

let compilerVersion: string | undefined;

/** Returns the path of a built agent.exe (unsigned); the file is shared: copy it before modifying it. */
export async function buildTestAgent(options: AgentOptions = {}): Promise<string> {
  const version = assertSafe(options.version ?? '1.0.0', 'version', /^\d{1,5}\.\d{1,5}\.\d{1,5}$/);
  const serviceName = assertSafe(options.serviceName ?? 'SignetTestAgent', 'service name', /^[A-Za-z0-9_]+$/);
  const padMiB = options.padMiB ?? 0;
  compilerVersion ??= (await defaultRunner.run('x86_64-w64-mingw32-gcc', ['-dumpversion'])).stdout.trim();
  const key = createHash('sha256')
    .update(readFileSync(join(FIXTURE, 'agent.c')))
    .update(readFileSync(join(FIXTURE, 'version.rc')))
    .update(JSON.stringify({ version, serviceName, padMiB, compilerVersion }))
    .digest('hex')
    .slice(0, 20);
  const cacheDir =
    options.cacheDir ?? process.env['SIGNET_AGENT_CACHE'] ?? join(tmpdir(), 'signet-agent-cache');
  const target = join(cacheDir, `agent-${key}.exe`);
  if (existsSync(target)) return target;

  const work = join(cacheDir, `build-${key}-${process.pid}-${Math.random().toString(36).slice(2)}`);
  mkdirSync(work, { recursive: true });
  try {
    const [maj, min, pat] = version.split('.');
    // windres hands -D values to the preprocessor through a shell: define them in a wrapper instead
    writeFileSync(
      join(work, 'version.rc'),
      `#define AGENT_VERSION_BIN ${maj},${min},${pat},0\n#define AGENT_VERSION_STR "${version}.0"\n` +
        `#include "${join(FIXTURE, 'version.rc')}"\n`,
    );
    await defaultRunner.run('x86_64-w64-mingw32-windres', [
      join(work, 'version.rc'),
      '-O',
      'coff',
      '-o',
      join(work, 'version.o'),
    ]);
    const objects = [join(work, 'version.o')];
    if (padMiB > 0) {
      padBlob(join(work, 'pad.bin'), padMiB);
      writeFileSync(
        join(work, 'pad.S'),
        `.section .rdata,"dr"\n.globl signet_pad\nsignet_pad:\n.incbin "${join(work, 'pad.bin')}"\n`,
      );
      objects.push(join(work, 'pad.S'));
    }
    await defaultRunner.run('x86_64-w64-mingw32-gcc', [
      '-municode',
      '-O2',
      '-s',
      `-DAGENT_SERVICE_NAME=L"${serviceName}"`,
      `-DAGENT_VERSION="${version}"`,
      '-o',
      join(work, 'agent.exe'),
      join(FIXTURE, 'agent.c'),
      ...objects,
      // keep the padding section even though nothing references it
      '-Wl,--no-gc-sections',
      '-ladvapi32',
    ]);
    // rename is atomic: parallel builders of the same key never see a half-written file
    renameSync(join(work, 'agent.exe'), target);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return target;
}

/** Builds (or reuses) the agent and copies it to `dest` (a private copy the caller may sign). */
export async function copyTestAgent(dest: string, options: AgentOptions = {}): Promise<string> {
  const built = await buildTestAgent(options);
  mkdirSync(dirname(dest), { recursive: true });
  copyFileSync(built, dest);
  return dest;
}
