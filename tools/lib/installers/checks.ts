/**
 * Post-build checks: extract what an installer really carries and compare it with what was meant.
 * `7z x` unpacks any NSIS installer (the agent, site.json and the generated uninstaller come back
 * byte-identical); `msiextract` unpacks the MSI's cabinet. Any difference fails the build.
 */
import { hash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { SignetError } from '../errors.ts';
import type { Runner } from '../exec/runner.ts';

export function sevenZipArgs(installer: string, outDir: string): string[] {
  return ['x', '-y', '-bd', '-bso0', '-bsp0', `-o${outDir}`, installer];
}

export function msiextractArgs(msi: string, outDir: string): string[] {
  return ['-C', outDir, msi];
}

/** One read, one hash: faster than a stream for the few-MB files checked here. */
export function sha256Of(path: string): string {
  return hash('sha256', readFileSync(path), 'hex');
}

export function listFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.push(p);
    }
  };
  walk(dir);
  return out;
}

function findOne(files: string[], base: string, name: string, what: string): string {
  const hits = files.filter((f) => f.split('/').pop()?.toLowerCase() === name.toLowerCase());
  if (hits.length !== 1)
    throw new SignetError(
      'E_INSTALLER_CHECK_FAILED',
      `${what}: expected exactly one ${name}, found ${hits.length}${hits.length ? ` (${hits.map((h) => relative(base, h)).join(', ')})` : ''}`,
    );
  return hits[0]!;
}

export interface PayloadExpectation {
  agentFileName: string;
  agentSha256: string;
  siteJson: Buffer;
}

export interface ExtractedPayload {
  agent: string;
  siteJson: string;
  /** NSIS only: the uninstaller the installer writes. */
  uninstaller?: string;
  files: string[];
}

/** Compares an extracted payload with the expectation; throws E_INSTALLER_CHECK_FAILED. */
export async function comparePayload(
  what: string,
  dir: string,
  expect: PayloadExpectation,
  withUninstaller: boolean,
  /** site.json as the installer carries it outside its archive (an NSIS overlay), read from the file. */
  overlay?: Buffer,
): Promise<ExtractedPayload> {
  const files = listFiles(dir);
  const agent = findOne(files, dir, expect.agentFileName, what);
  if (overlay && files.some((f) => f.split('/').pop()?.toLowerCase() === 'site.json'))
    throw new SignetError('E_INSTALLER_CHECK_FAILED', `${what}: carries a site.json besides its overlay`);
  const siteJson = overlay ? '' : findOne(files, dir, 'site.json', what);
  const agentSha = sha256Of(agent);
  if (agentSha !== expect.agentSha256)
    throw new SignetError(
      'E_INSTALLER_CHECK_FAILED',
      `${what}: the embedded agent (sha256 ${agentSha}) is not the signed agent (sha256 ${expect.agentSha256})`,
      { details: { embedded: agentSha, signed: expect.agentSha256 } },
    );
  // never print the content: it holds the enrollment key
  if (!(overlay ?? readFileSync(siteJson)).equals(expect.siteJson))
    throw new SignetError(
      'E_INSTALLER_CHECK_FAILED',
      `${what}: the embedded site.json differs from the intended configuration`,
    );
  const result: ExtractedPayload = { agent, siteJson, files };
  if (withUninstaller) result.uninstaller = findOne(files, dir, 'uninst.exe', what);
  return result;
}

export async function extractNsis(runner: Runner, exe: string, outDir: string): Promise<void> {
  await runner.run('7z', sevenZipArgs(exe, outDir), { label: '7z x', timeoutMs: 300_000 });
}

export async function extractMsi(runner: Runner, msi: string, outDir: string): Promise<void> {
  await runner.run('msiextract', msiextractArgs(msi, outDir), { label: 'msiextract', timeoutMs: 300_000 });
}
