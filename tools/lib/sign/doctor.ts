/**
 * `signet doctor`: which external tools are present, their versions, and the command that
 * installs what is missing. Checks run in parallel with short time limits; nothing is modified.
 */
import { existsSync, readdirSync } from 'node:fs';
import type { SignetConfig } from '../config/schema.ts';
import { defaultRunner, type Runner } from '../exec/runner.ts';
import { backendOf } from './backends/index.ts';
import { DEFAULT_PKCS11_ENGINE } from './osslsigncode.ts';

export type CheckGroup = 'signing' | 'installers' | 'tests';

export interface ToolCheck {
  name: string;
  group: CheckGroup;
  /** What it is needed for. */
  purpose: string;
  ok: boolean;
  /** Required for the current configuration (a missing required tool fails doctor). */
  required: boolean;
  version?: string;
  path?: string;
  problem?: string;
  install?: string;
}

export interface DoctorReport {
  ok: boolean;
  checks: ToolCheck[];
  missingRequired: string[];
}

interface ProgramSpec {
  name: string;
  group: CheckGroup;
  purpose: string;
  file: string;
  args: string[];
  /** Extracts a version from stdout+stderr. */
  version: RegExp;
  apt: string;
}

export const SOFTHSM_MODULE = '/usr/lib/softhsm/libsofthsm2.so';

const PROGRAMS: ProgramSpec[] = [
  {
    name: 'osslsigncode',
    group: 'signing',
    purpose: 'Authenticode sign/verify',
    file: 'osslsigncode',
    args: ['--version'],
    version: /osslsigncode ([\d.]+)/,
    apt: 'osslsigncode',
  },
  {
    name: 'openssl',
    group: 'signing',
    purpose: 'dev certificates, local TSA',
    file: 'openssl',
    args: ['version'],
    version: /OpenSSL ([\d.]+\w*)/,
    apt: 'openssl',
  },
  {
    name: 'java',
    group: 'signing',
    purpose: 'jsign backend',
    file: 'java',
    args: ['-version'],
    version: /version "([^"]+)"/,
    apt: 'default-jre-headless',
  },
  {
    name: 'softhsm2-util',
    group: 'signing',
    purpose: 'PKCS#11 test token (SoftHSM2)',
    file: 'softhsm2-util',
    args: ['--version'],
    version: /^([\d.]+)/m,
    apt: 'softhsm2',
  },
  {
    name: 'pkcs11-tool',
    group: 'signing',
    purpose: 'import keys into a PKCS#11 token',
    file: 'pkcs11-tool',
    args: ['--show-info', '--module', SOFTHSM_MODULE],
    version: /Cryptoki version ([\d.]+)|()/,
    apt: 'opensc',
  },
  {
    name: 'makensis',
    group: 'installers',
    purpose: 'NSIS installers',
    file: 'makensis',
    args: ['-VERSION'],
    version: /v?([\d.]+[^\s]*)/,
    apt: 'nsis',
  },
  {
    name: 'wixl',
    group: 'installers',
    purpose: 'MSI installers',
    file: 'wixl',
    args: ['--version'],
    version: /([\d.]+)/,
    apt: 'wixl',
  },
  {
    name: 'msibuild',
    group: 'installers',
    purpose: 'MSI table edits',
    file: 'msibuild',
    args: ['--version'],
    version: /()/,
    apt: 'msitools',
  },
  {
    name: 'msiextract',
    group: 'installers',
    purpose: 'MSI payload checks',
    file: 'msiextract',
    args: ['--version'],
    version: /([\d.]+)/,
    apt: 'msitools',
  },
  {
    name: 'msiinfo',
    group: 'installers',
    purpose: 'MSI table checks',
    file: 'msiinfo',
    args: ['--version'],
    version: /version ([\d.]+)/,
    apt: 'msitools',
  },
  {
    name: '7z',
    group: 'installers',
    purpose: 'NSIS payload checks',
    file: '7z',
    args: ['i'],
    version: /7-Zip (?:\[64\] )?([\d.]+)/,
    apt: 'p7zip-full',
  },
  {
    name: 'x86_64-w64-mingw32-gcc',
    group: 'tests',
    purpose: 'build test/demo PE files',
    file: 'x86_64-w64-mingw32-gcc',
    args: ['--version'],
    version: /\(GCC\) ([\w.-]+)/,
    apt: 'gcc-mingw-w64-x86-64',
  },
  {
    name: 'wine',
    group: 'tests',
    purpose: 'end-to-end install tests',
    file: 'wine',
    args: ['--version'],
    version: /wine-([\d.]+)/,
    apt: 'wine wine64',
  },
];

function installCommand(apt: string): string {
  return `sudo apt-get install -y ${apt}`;
}

async function checkProgram(spec: ProgramSpec, runner: Runner, required: boolean): Promise<ToolCheck> {
  const base: ToolCheck = { name: spec.name, group: spec.group, purpose: spec.purpose, ok: false, required };
  try {
    const r = await runner.run(spec.file, spec.args, {
      allowFailure: true,
      timeoutMs: 15_000,
      label: `doctor ${spec.name}`,
      input: '',
    });
    const text = `${r.stdout}\n${r.stderr}`;
    const version = spec.version.exec(text)?.slice(1).find(Boolean);
    return { ...base, ok: true, ...(version ? { version } : {}) };
  } catch (e) {
    const code = (e as { code?: string }).code;
    return {
      ...base,
      problem:
        code === 'E_TOOL_MISSING'
          ? 'not found on PATH'
          : (String((e as Error).message).split('\n')[0] ?? 'failed'),
      install: installCommand(spec.apt),
    };
  }
}

function fileCheck(
  name: string,
  group: CheckGroup,
  purpose: string,
  path: string,
  apt: string,
  required: boolean,
): ToolCheck {
  const ok = existsSync(path);
  return {
    name,
    group,
    purpose,
    ok,
    required,
    path,
    ...(ok
      ? {}
      : {
          problem: `missing: ${path}`,
          install: apt ? installCommand(apt) : 'set the path in signet.config.yaml',
        }),
  };
}

/** Without a jsign profile: is a jsign jar around at all (SIGNET_JSIGN_JAR, the Debian package)? */
function findJsign(): ToolCheck {
  const candidates = [process.env['SIGNET_JSIGN_JAR'], '/usr/share/jsign/jsign.jar'].filter(
    (x): x is string => Boolean(x),
  );
  try {
    for (const f of readdirSync('/usr/share/jsign'))
      if (f.endsWith('.jar')) candidates.push(`/usr/share/jsign/${f}`);
  } catch {
    /* not installed */
  }
  const found = candidates.find((c) => existsSync(c));
  return {
    name: 'jsign jar',
    group: 'signing',
    purpose: 'jsign backend (TRUSTEDSIGNING, AZUREKEYVAULT, AWS, GOOGLECLOUD, …)',
    ok: Boolean(found),
    required: false,
    ...(found
      ? { path: found }
      : {
          problem: 'no jsign jar (set SIGNET_JSIGN_JAR or a jsign profile)',
          install: 'download jsign-<version>.jar (or the .deb) from https://github.com/ebourg/jsign/releases',
        }),
  };
}

/** What the configuration needs: osslsigncode always (verify), java + jar for jsign profiles, … */
export async function runDoctor(
  config?: SignetConfig,
  runner: Runner = defaultRunner,
): Promise<DoctorReport> {
  // what each profile's backend needs: named checks made required, and files of its own
  const needs = Object.entries(config?.signing.profiles ?? {}).map(([name, p]) =>
    backendOf(p, name).doctor?.({ ...p, name }),
  );
  const requiredNames = new Set(['osslsigncode', 'openssl', ...needs.flatMap((n) => n?.requires ?? [])]);
  const usesJsign = requiredNames.has('java');
  const usesPkcs11 = requiredNames.has('pkcs11 engine');
  const checks = await Promise.all(PROGRAMS.map((s) => checkProgram(s, runner, requiredNames.has(s.name))));
  checks.push(
    fileCheck(
      'pkcs11 engine',
      'signing',
      'OpenSSL engine for PKCS#11 tokens',
      DEFAULT_PKCS11_ENGINE,
      'libengine-pkcs11-openssl',
      usesPkcs11,
    ),
  );
  checks.push(
    fileCheck(
      'softhsm2 module',
      'signing',
      'SoftHSM2 PKCS#11 module (tests)',
      SOFTHSM_MODULE,
      'softhsm2',
      false,
    ),
  );
  if (!usesJsign) checks.push(findJsign());
  for (const f of needs.flatMap((n) => n?.files ?? [])) {
    const c = fileCheck(f.name, 'signing', f.purpose, f.path, '', true);
    if (!c.ok && f.install) c.install = f.install;
    checks.push(c);
  }
  const missingRequired = checks.filter((c) => c.required && !c.ok).map((c) => c.name);
  return { ok: missingRequired.length === 0, checks, missingRequired };
}

export function formatDoctor(report: DoctorReport): string {
  const lines: string[] = [];
  for (const group of ['signing', 'installers', 'tests'] as const) {
    lines.push(`${group}:`);
    for (const c of report.checks.filter((x) => x.group === group)) {
      const mark = c.ok ? 'ok     ' : c.required ? 'MISSING' : 'missing';
      const detail = c.ok
        ? (c.version ?? c.path ?? '')
        : `${c.problem ?? ''}${c.install ? ` → ${c.install}` : ''}`;
      lines.push(`  ${mark} ${c.name.padEnd(24)} ${detail}${c.ok ? '' : `  (${c.purpose})`}`);
    }
  }
  lines.push(
    report.ok
      ? 'doctor: everything required is present'
      : `doctor: missing required: ${report.missingRequired.join(', ')}`,
  );
  return lines.join('\n');
}
