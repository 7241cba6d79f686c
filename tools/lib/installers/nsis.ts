/**
 * The NSIS bootstrapper: template variables, makensis argv (pure), and the build itself.
 * The uninstaller is signed at compile time by `!uninstfinalize '"<sign script>" "%1"' = 0`; the
 * sign script asks this process's Signer over a private socket (see sign-server.ts), so neither
 * the .nsi nor any argv ever holds a secret.
 */

import { SignetError } from '../errors.ts';
import type { Runner } from '../exec/runner.ts';
import type { InstallersConfig, ProductConfig } from './config.ts';
import { renderTemplate, type TemplateVariable } from './template.ts';

export const NSIS_VARIABLES: Record<string, TemplateVariable> = {
  COMPRESSION: { kind: 'directive', description: 'SetCompressor/SetCompress line chosen from `compression`' },
  VENDOR: { kind: 'segment', description: 'product.vendor (folder under Program Files and ProgramData)' },
  PRODUCT: { kind: 'segment', description: 'product.product' },
  SERVICE_NAME: { kind: 'identifier', description: 'product.serviceName' },
  AGENT_FILE: { kind: 'identifier', description: 'product.agentFileName (installed file name)' },
  VERSION: { kind: 'version', description: 'x.y.z' },
  VERSION4: { kind: 'version', description: 'x.y.z.0 (VIProductVersion)' },
  SITE_CODE: { kind: 'identifier', description: 'the site code' },
  KEY_VERSION: { kind: 'number', description: 'N of the enrollment key' },
  FINGERPRINT_HEX: { kind: 'hex', description: 'XXXX of the key fingerprint' },
  SIGN_SCRIPT: { kind: 'file', description: 'relative path of the script that signs %1 in place' },
  OUT_FILE: { kind: 'file', description: 'relative output file name' },
  ICON: { kind: 'directive', description: 'Icon/UninstallIcon lines, or empty' },
  INSTALL_ARGS: { kind: 'args', description: 'product.installArgs joined by spaces' },
  UNINSTALL_ARGS: { kind: 'args', description: 'product.uninstallArgs joined by spaces' },
  REMOVE_CONFIG: { kind: 'flag', description: '1 when site.json is deleted on uninstall' },
};

export function compressionDirective(c: InstallersConfig['compression']): string {
  if (c === 'none') return 'SetCompress off';
  if (c === 'lzma') return 'SetCompressor /SOLID /FINAL lzma';
  return 'SetCompressor /FINAL zlib';
}

export const NSIS_SOURCE = 'installer.nsi';
export const NSIS_OUT = 'installer.exe';
export const SIGN_SCRIPT = 'sign-uninstaller.sh';

/** The NSIS template's variables that every site of a release shares (the file names are fixed). */
export function nsisReleaseValues(s: {
  product: ProductConfig;
  installers: Pick<InstallersConfig, 'compression'>;
  version: string;
  icon?: unknown;
}): Record<string, string> {
  const p = s.product;
  return {
    COMPRESSION: compressionDirective(s.installers.compression),
    VENDOR: p.vendor,
    PRODUCT: p.product,
    SERVICE_NAME: p.serviceName,
    AGENT_FILE: p.agentFileName,
    VERSION: s.version,
    VERSION4: `${s.version}.0`,
    SIGN_SCRIPT,
    OUT_FILE: NSIS_OUT,
    ICON: s.icon ? 'Icon "payload\\product.ico"\nUninstallIcon "payload\\product.ico"' : '',
    INSTALL_ARGS: p.installArgs.join(' '),
    UNINSTALL_ARGS: p.uninstallArgs.join(' '),
    REMOVE_CONFIG: p.removeConfigOnUninstall ? '1' : '0',
  };
}

export function renderNsis(template: string, values: Record<string, string>, source: string): string {
  const text = renderTemplate(template, values, NSIS_VARIABLES, source);
  // A template that forgets to sign its uninstaller would ship an unsigned uninst.exe.
  if (!/^\s*!uninstfinalize\s+.+=\s*0\s*$/m.test(text))
    throw new SignetError(
      'E_TEMPLATE_INVALID',
      `${source}: the template must sign its uninstaller with !uninstfinalize '… %1' = 0`,
    );
  return text;
}

/**
 * makensis argv: warnings are errors, UTF-8 input, quiet unless something is wrong. `defines`
 * become `-DNAME=VALUE` before the script (Signet's own names and values only, e.g. SIGNET_STUB).
 */
export function makensisArgs(script: string, defines: Record<string, string> = {}): string[] {
  const d = Object.entries(defines).map(([k, v]) => {
    if (!/^[A-Z][A-Z0-9_]{0,63}$/.test(k) || !/^[A-Za-z0-9._-]{0,64}$/.test(v))
      throw new SignetError('E_INTERNAL', `makensis define ${k} is not a plain name and value`);
    return `-D${k}=${v}`;
  });
  return ['-V2', '-WX', '-INPUTCHARSET', 'UTF8', ...d, script];
}

export interface NsisBuildOptions {
  runner: Runner;
  workDir: string;
  env: Record<string, string>;
  timeoutMs?: number;
  /** `-D` symbols for the script (see makensisArgs). */
  defines?: Record<string, string>;
}

/** Runs makensis in `workDir` (which holds installer.nsi, payload/, the sign script). */
export async function runMakensis({
  runner,
  workDir,
  env,
  timeoutMs,
  defines,
}: NsisBuildOptions): Promise<void> {
  try {
    await runner.run('makensis', makensisArgs(NSIS_SOURCE, defines), {
      cwd: workDir,
      env: { ...env, LC_ALL: 'C.UTF-8' },
      timeoutMs: timeoutMs ?? 600_000,
      outputs: [`${workDir}/${NSIS_OUT}`],
      label: 'makensis',
    });
  } catch (e) {
    if (e instanceof SignetError && e.code === 'E_TOOL_FAILED')
      throw new SignetError('E_INSTALLER_BUILD_FAILED', `NSIS build failed: ${e.message}`, {
        cause: e,
        details: e.details,
      });
    throw e;
  }
}
