/**
 * Builds the demo Windows service agent (templates/demo-agent: a tiny real service with
 * install / uninstall / run / version commands) with mingw-w64, cached by the hash of everything
 * that goes into it, so repeated demos, tests and benchmarks reuse one build. `padMiB` appends a
 * deterministic incompressible blob (for the 10 MB / 50 MB agents of the benchmarks).
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
import { SignetError } from '../errors.ts';
import { defaultRunner } from '../exec/runner.ts';
import { packagePath } from '../paths.ts';

export const DEMO_AGENT_SOURCE = packagePath('templates', 'demo-agent');

export interface DemoAgentOptions {
  /** x.y.z (written to the VERSIONINFO resource and printed by `agent version`). */
  version?: string;
  serviceName?: string;
  /** Pad the executable with this many MiB of deterministic incompressible bytes. */
  padMiB?: number;
  /** Cache folder (default: $SIGNET_AGENT_CACHE or <tmp>/signet-agent-cache). */
  cacheDir?: string;
}

function checked(value: string, what: string, re: RegExp): string {
  if (!re.test(value)) throw new SignetError('E_INPUT_INVALID', `demo agent: invalid ${what}: ${value}`);
  return value;
}

function padBlob(path: string, mib: number): void {
  // SHA-256 in counter mode: deterministic and incompressible
  const out = Buffer.allocUnsafe(mib * 1024 * 1024);
  for (let off = 0, i = 0; off < out.length; i++) {
    off += createHash('sha256').update(`signet-pad-${i}`).digest().copy(out, off);
  }
  writeFileSync(path, out);
}

let compilerVersion: string | undefined;

/** Returns the path of a cached, unsigned agent.exe; copy it before modifying it. */
export async function buildCachedAgent(options: DemoAgentOptions = {}): Promise<string> {
  const version = checked(options.version ?? '1.0.0', 'version', /^\d{1,5}\.\d{1,5}\.\d{1,5}$/);
  const serviceName = checked(options.serviceName ?? 'SignetTestAgent', 'service name', /^[A-Za-z0-9_]+$/);
  const padMiB = options.padMiB ?? 0;
  compilerVersion ??= (await defaultRunner.run('x86_64-w64-mingw32-gcc', ['-dumpversion'])).stdout.trim();
  const key = createHash('sha256')
    .update(readFileSync(join(DEMO_AGENT_SOURCE, 'agent.c')))
    .update(readFileSync(join(DEMO_AGENT_SOURCE, 'version.rc')))
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
        `#include "${join(DEMO_AGENT_SOURCE, 'version.rc')}"\n`,
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
      join(DEMO_AGENT_SOURCE, 'agent.c'),
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

/** Builds (or reuses) the agent and copies it to `dest`, a private copy the caller may sign. */
export async function buildDemoAgent(dest: string, options: DemoAgentOptions = {}): Promise<string> {
  const built = await buildCachedAgent(options);
  mkdirSync(dirname(dest), { recursive: true });
  copyFileSync(built, dest);
  return dest;
}
