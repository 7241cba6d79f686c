/**
 * The MSI: template variables, wixl argv (pure), the post-build table edits made with msibuild
 * (MsiLockPermissionsEx, permanent config component), and a lint over the exported tables.
 * wixl has silent traps (unknown attributes dropped, CRITICAL assertions with exit 0): any line of
 * its output that says WARNING or CRITICAL fails the build.
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SignetError } from '../errors.ts';
import type { Runner } from '../exec/runner.ts';
import type { ProductConfig } from './config.ts';
import { configGuardProblems } from './config-guard.ts';
import { readMsiFactsInProcess, withMsiDatabase } from './msi-db.ts';
import { renderTemplate, type TemplateVariable } from './template.ts';

export const WIX_VARIABLES: Record<string, TemplateVariable> = {
  PRODUCT_CODE: { kind: 'guid', description: 'a fresh ProductCode per build' },
  UPGRADE_CODE: { kind: 'guid', description: 'product.upgradeCode (or derived from vendor+product)' },
  VENDOR: { kind: 'segment', description: 'product.vendor' },
  PRODUCT: { kind: 'segment', description: 'product.product' },
  SERVICE_NAME: { kind: 'identifier', description: 'product.serviceName' },
  AGENT_FILE: { kind: 'identifier', description: 'product.agentFileName' },
  VERSION: { kind: 'version', description: 'x.y.z' },
  SITE_CODE: { kind: 'identifier', description: 'the site code' },
  KEY_VERSION: { kind: 'number', description: 'N of the enrollment key' },
  FINGERPRINT_HEX: { kind: 'hex', description: 'XXXX of the key fingerprint' },
  ICON_XML: { kind: 'wixIcon', description: 'Icon + ARPPRODUCTICON elements, or empty' },
  MSI_SERVICE_MODE: { kind: 'identifier', description: 'serviceInstall | agentCommand' },
  SERVICE_ARGS: { kind: 'argsOrEmpty', description: 'product.serviceArgs joined by spaces' },
  INSTALL_ARGS: { kind: 'args', description: 'product.installArgs joined by spaces' },
  UNINSTALL_ARGS: { kind: 'args', description: 'product.uninstallArgs joined by spaces' },
  CONFIG_CHECK_SCRIPT_B64: {
    kind: 'base64',
    description: 'the ProgramData folder check (PowerShell, -EncodedCommand); see config-guard.ts',
  },
};

export const WIX_SOURCE = 'installer.wxs';
export const MSI_OUT = 'installer.msi';
export const ICON_XML =
  '<Icon Id="product.ico" SourceFile="payload/product.ico"/><Property Id="ARPPRODUCTICON" Value="product.ico"/>';

/**
 * SDDL: owned by Administrators (a folder a standard user made in advance is taken from them),
 * protected DACL, full access for SYSTEM (SY) and Administrators (BA) only.
 */
export const CONFIG_DIR_SDDL = 'O:BAG:SYD:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)';
export const CONFIG_FILE_SDDL = 'O:BAG:SYD:PAI(A;;FA;;;SY)(A;;FA;;;BA)';

export function renderWix(template: string, values: Record<string, string>, source: string): string {
  return renderTemplate(template, values, WIX_VARIABLES, source);
}

export function wixlArgs(source: string, out: string): string[] {
  return ['-a', 'x64', '-o', out, source];
}

/** Any of these in wixl's output means the MSI may be silently broken. */
export function wixlProblems(output: string): string[] {
  return output
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /\b(WARNING|CRITICAL|ERROR)\b|warning:|error:/i.test(l));
}

/** The IDT file msibuild imports: MsiLockPermissionsEx rows for the config folder and file. */
export function lockPermissionsIdt(): string {
  const rows = [
    ['MsiLockPermissionsEx', 'LockObject', 'Table', 'SDDLText', 'Condition'],
    ['s72', 's72', 's32', 's0', 'S255'],
    ['MsiLockPermissionsEx', 'MsiLockPermissionsEx'],
    ['SignetLockConfigDir', 'DATADIR', 'CreateFolder', CONFIG_DIR_SDDL, ''],
    ['SignetLockSiteJson', 'SiteJson', 'File', CONFIG_FILE_SDDL, ''],
  ];
  return `${rows.map((r) => r.join('\t')).join('\r\n')}\r\n`;
}

/**
 * wixl drops IncludeMaximum="yes" without a word. The Upgrade table (exported as IDT) gets
 * VersionMaxInclusive (512) on the row of SIGNET_UPGRADE_FOUND, so that a rebuild of the same
 * version (a rotated key) replaces the installed one. Attributes is part of the table's primary
 * key, so the table is re-imported rather than UPDATEd (libmsi refuses that).
 */
export function inclusiveUpgradeIdt(exported: string): string {
  const lines = exported.replace(/\r\n/g, '\n').replace(/\n$/, '').split('\n');
  const columns = (lines[0] ?? '').split('\t');
  const attr = columns.indexOf('Attributes');
  const prop = columns.indexOf('ActionProperty');
  if (attr < 0 || prop < 0)
    throw new SignetError('E_INSTALLER_BUILD_FAILED', 'MSI Upgrade table has an unexpected shape');
  const out = lines.map((line, i) => {
    if (i < 3) return line;
    const cells = line.split('\t');
    if (cells[prop] === 'SIGNET_UPGRADE_FOUND') cells[attr] = String(Number(cells[attr]) | 512);
    return cells.join('\t');
  });
  return `${out.join('\r\n')}\r\n`;
}

/** msibuild argv for the post-build edits. */
export function msibuildArgs(msi: string, idts: string[], product: ProductConfig): string[] {
  const args = [msi, ...idts.flatMap((t) => ['-i', t])];
  if (!product.removeConfigOnUninstall)
    // 256 (64-bit) | 16 (permanent): site.json survives uninstall
    args.push('-q', "UPDATE `Component` SET `Attributes` = 272 WHERE `Component` = 'SiteConfigComponent'");
  return args;
}

export interface MsiBuildOptions {
  runner: Runner;
  workDir: string;
  product: ProductConfig;
  timeoutMs?: number;
}

export async function runWixl({ runner, workDir, product, timeoutMs }: MsiBuildOptions): Promise<string> {
  const out = join(workDir, MSI_OUT);
  let r: Awaited<ReturnType<Runner['run']>>;
  try {
    r = await runner.run('wixl', wixlArgs(WIX_SOURCE, MSI_OUT), {
      cwd: workDir,
      timeoutMs: timeoutMs ?? 600_000,
      outputs: [out],
      label: 'wixl',
    });
  } catch (e) {
    if (e instanceof SignetError && e.code === 'E_TOOL_FAILED')
      throw new SignetError('E_INSTALLER_BUILD_FAILED', `MSI build failed: ${e.message}`, {
        cause: e,
        details: e.details,
      });
    throw e;
  }
  const problems = wixlProblems(`${r.stdout}\n${r.stderr}`);
  if (problems.length) {
    rmSync(out, { force: true });
    throw new SignetError(
      'E_INSTALLER_BUILD_FAILED',
      `wixl reported problems (treated as failures: wixl writes broken MSIs with exit 0):\n${problems.join('\n')}`,
      { details: { problems } },
    );
  }
  const idt = join(workDir, 'MsiLockPermissionsEx.idt');
  writeFileSync(idt, lockPermissionsIdt());
  const upgrade = join(workDir, 'Upgrade.idt');
  const exported = withMsiDatabase(out, (db) => db.exportIdt('Upgrade'));
  if (!exported) {
    rmSync(out, { force: true });
    throw new SignetError(
      'E_INSTALLER_BUILD_FAILED',
      'the MSI has no Upgrade table (no major upgrade possible)',
    );
  }
  writeFileSync(upgrade, inclusiveUpgradeIdt(exported));
  await runner.run('msibuild', msibuildArgs(out, [idt, upgrade], product), {
    cwd: workDir,
    timeoutMs: 120_000,
    outputs: [out],
    label: 'msibuild',
  });
  return out;
}

// ---------------------------------------------------------------------------------------------
// Lint

export interface MsiTable {
  columns: string[];
  rows: Record<string, string>[];
}

/** Parses `msiinfo export` output (IDT: names, types, table+keys, rows). */
export function parseIdt(text: string): MsiTable {
  const lines = text.replace(/\r\n/g, '\n').split('\n');
  const columns = (lines[0] ?? '').split('\t');
  const rows = lines
    .slice(3)
    .filter((l) => l !== '')
    .map((l) => {
      const cells = l.split('\t');
      return Object.fromEntries(columns.map((c, i) => [c, cells[i] ?? '']));
    });
  return { columns, rows };
}

/** Standard actions (not custom actions) that may appear in a sequence table. */
const STANDARD_ACTIONS = new Set(
  (
    'AllocateRegistrySpace AppSearch BindImage CCPSearch CostFinalize CostInitialize CreateFolders CreateShortcuts ' +
    'DeleteServices DisableRollback DuplicateFiles ExecuteAction FileCost FindRelatedProducts ForceReboot InstallAdminPackage ' +
    'InstallExecute InstallExecuteAgain InstallFiles InstallFinalize InstallInitialize InstallODBC InstallServices ' +
    'InstallSFPCatalogFile InstallValidate IsolateComponents LaunchConditions MigrateFeatureStates MoveFiles ' +
    'MsiConfigureServices MsiPublishAssemblies MsiUnpublishAssemblies PatchFiles ProcessComponents PublishComponents ' +
    'PublishFeatures PublishProduct RegisterClassInfo RegisterComPlus RegisterExtensionInfo RegisterFonts ' +
    'RegisterMIMEInfo RegisterProduct RegisterProgIdInfo RegisterTypeLibraries RegisterUser RemoveDuplicateFiles ' +
    'RemoveEnvironmentStrings RemoveExistingProducts RemoveFiles RemoveFolders RemoveIniValues RemoveODBC ' +
    'RemoveRegistryValues RemoveShortcuts ResolveSource RMCCPSearch ScheduleReboot SelfRegModules SelfUnregModules ' +
    'SetODBCFolders StartServices StopServices UnpublishComponents UnpublishFeatures UnregisterClassInfo ' +
    'UnregisterComPlus UnregisterExtensionInfo UnregisterFonts UnregisterMIMEInfo UnregisterProgIdInfo ' +
    'UnregisterTypeLibraries ValidateProductID WriteEnvironmentStrings WriteIniValues WriteRegistryValues ' +
    'ExecuteAction Welcome_Dialog ExitDialog FatalError UserExit PrepareDlg ProgressDlg'
  ).split(' '),
);

export interface MsiFacts {
  tables: Record<string, MsiTable>;
  /** Template of the summary information, e.g. "x64;1033". */
  template: string;
}

export interface MsiLintExpect {
  product: ProductConfig;
  upgradeCode: string;
  version: string;
  agentSize: number;
  siteJsonSize: number;
}

/** Every rule over the tables; returns the problems (empty = clean). */
export function lintMsiFacts(facts: MsiFacts, expect: MsiLintExpect): string[] {
  const p: string[] = [];
  const t = (name: string) => facts.tables[name]?.rows ?? [];
  if (!facts.template.startsWith('x64;'))
    p.push(`summary Template is "${facts.template}", not x64 (build with wixl -a x64)`);

  const customActions = new Set(t('CustomAction').map((r) => r['Action']));
  for (const seqTable of [
    'InstallExecuteSequence',
    'InstallUISequence',
    'AdminExecuteSequence',
    'AdvtExecuteSequence',
  ]) {
    const numbers = new Map<string, string>();
    for (const r of t(seqTable)) {
      const action = r['Action']!;
      if (!STANDARD_ACTIONS.has(action) && !customActions.has(action))
        p.push(
          `${seqTable}: action ${action} is sequenced but exists neither as a standard nor a custom action`,
        );
      const seq = r['Sequence']!;
      if (!/^-?\d+$/.test(seq)) p.push(`${seqTable}: action ${action} has no sequence number`);
      else if (Number(seq) > 0 && numbers.has(seq))
        p.push(`${seqTable}: actions ${numbers.get(seq)} and ${action} share sequence ${seq}`);
      else numbers.set(seq, action);
    }
  }
  const ies = new Map(t('InstallExecuteSequence').map((r) => [r['Action']!, Number(r['Sequence'])]));
  const rep = ies.get('RemoveExistingProducts');
  if (rep === undefined)
    p.push('InstallExecuteSequence: RemoveExistingProducts is not sequenced (no major upgrade)');
  else {
    const validate = ies.get('InstallValidate');
    const init = ies.get('InstallInitialize');
    const finalize = ies.get('InstallFinalize');
    const okEarly = validate !== undefined && init !== undefined && rep > validate && rep < init;
    const okLate = finalize !== undefined && rep > finalize;
    if (!okEarly && !okLate)
      p.push(
        `InstallExecuteSequence: RemoveExistingProducts at ${rep} is outside InstallValidate..InstallInitialize`,
      );
  }
  if (!ies.has('FindRelatedProducts')) p.push('InstallExecuteSequence: FindRelatedProducts is missing');
  for (const r of t('CustomAction')) {
    const action = r['Action']!;
    if (![...ies.keys()].includes(action) && !t('InstallUISequence').some((s) => s['Action'] === action))
      p.push(`CustomAction ${action} is defined but never sequenced`);
    const type = Number(r['Type']);
    // deferred custom actions must not impersonate (run as LocalSystem)
    if (type & 1024 && !(type & 2048)) p.push(`CustomAction ${action} is deferred but impersonates the user`);
  }

  const upgrade = t('Upgrade');
  const code = `{${expect.upgradeCode.replace(/[{}]/g, '').toUpperCase()}}`;
  const removing = upgrade.filter(
    (r) => r['UpgradeCode']?.toUpperCase() === code && !(Number(r['Attributes']) & 2),
  );
  if (!removing.length) p.push('Upgrade: no row removes earlier versions of this UpgradeCode');
  else if (!removing.some((r) => r['VersionMax'] === expect.version && Number(r['Attributes']) & 512))
    p.push(
      `Upgrade: no row removes an installed ${expect.version} (VersionMax ${expect.version} inclusive): a rebuild with a rotated key would install side by side`,
    );
  const detecting = upgrade.find(
    (r) => r['UpgradeCode']?.toUpperCase() === code && Number(r['Attributes']) & 2,
  );
  if (!detecting || detecting['VersionMin'] !== expect.version || Number(detecting['Attributes']) & 256)
    p.push(
      `Upgrade: no detect-only row for versions newer than ${expect.version} (downgrades would not be refused)`,
    );
  const props = new Map(t('Property').map((r) => [r['Property']!, r['Value']!]));
  if (props.get('UpgradeCode')?.toUpperCase() !== code) p.push(`Property UpgradeCode is not ${code}`);
  if (!/^\{[0-9A-F-]{36}\}$/i.test(props.get('ProductCode') ?? ''))
    p.push('Property ProductCode is not a GUID');
  if (props.get('ProductVersion') !== expect.version)
    p.push(`Property ProductVersion is not ${expect.version}`);
  if (props.has('ALLUSERS') && props.get('ALLUSERS') !== '1')
    p.push('Property ALLUSERS must not be per-user');

  for (const r of t('Component'))
    if (!(Number(r['Attributes']) & 256)) p.push(`Component ${r['Component']} is not 64-bit`);
  const dirs = new Map(t('Directory').map((r) => [r['Directory']!, r]));
  const underRoot = (id: string, root: string) => {
    for (let d = dirs.get(id), n = 0; d && n < 32; d = dirs.get(d['Directory_Parent'] ?? ''), n++)
      if (d['Directory'] === root) return true;
    return false;
  };
  const files = new Map(t('File').map((r) => [r['File']!, r]));
  const comps = new Map(t('Component').map((r) => [r['Component']!, r]));
  const agent = files.get('AgentExe');
  if (!agent) p.push('File: the agent (AgentExe) is missing');
  else {
    if (Number(agent['FileSize']) !== expect.agentSize)
      p.push('File AgentExe: size differs from the signed agent');
    if (!underRoot(comps.get(agent['Component_']!)?.['Directory_'] ?? '', 'ProgramFiles64Folder'))
      p.push('File AgentExe is not installed under ProgramFiles64Folder');
  }
  const sj = files.get('SiteJson');
  if (!sj) p.push('File: site.json (SiteJson) is missing');
  else {
    if (Number(sj['FileSize']) !== expect.siteJsonSize)
      p.push('File SiteJson: size differs from the serialised site.json');
    if (!underRoot(comps.get(sj['Component_']!)?.['Directory_'] ?? '', 'CommonAppDataFolder'))
      p.push('File SiteJson is not installed under CommonAppDataFolder');
    const attrs = Number(comps.get(sj['Component_']!)?.['Attributes']);
    if (Boolean(attrs & 16) === expect.product.removeConfigOnUninstall)
      p.push(
        `Component of site.json is ${attrs & 16 ? '' : 'not '}permanent, against removeConfigOnUninstall`,
      );
  }

  p.push(...configGuardProblems(facts, expect.product));

  const locks = facts.tables['MsiLockPermissionsEx'];
  if (!locks) p.push('MsiLockPermissionsEx table is missing (the site config would be readable by users)');
  else {
    const createFolders = new Set(t('CreateFolder').map((r) => r['Directory_']));
    const lockedDir = locks.rows.find((r) => r['Table'] === 'CreateFolder' && r['LockObject'] === 'DATADIR');
    const lockedFile = locks.rows.find((r) => r['Table'] === 'File' && r['LockObject'] === 'SiteJson');
    if (!lockedDir || !createFolders.has('DATADIR'))
      p.push('MsiLockPermissionsEx: the config folder is not locked');
    if (!lockedFile) p.push('MsiLockPermissionsEx: site.json is not locked');
    for (const r of locks.rows) {
      const sddl = r['SDDLText'] ?? '';
      if (!/^O:(BA|SY)(G:[A-Z]{2})?D:P/.test(sddl))
        p.push(
          `MsiLockPermissionsEx ${r['MsiLockPermissionsEx']}: not owned by Administrators or SYSTEM with a protected DACL`,
        );
      const trustees = [...sddl.matchAll(/\(A;[^;]*;[^;]*;[^;]*;[^;]*;([^)]+)\)/g)].map((m) => m[1]);
      if (trustees.some((x) => x !== 'SY' && x !== 'BA'))
        p.push(
          `MsiLockPermissionsEx ${r['MsiLockPermissionsEx']}: grants access beyond SYSTEM and Administrators`,
        );
    }
    if (
      facts.tables['LockPermissions']?.rows.some(
        (r) => r['LockObject'] === 'SiteJson' || r['LockObject'] === 'DATADIR',
      )
    )
      p.push('LockPermissions and MsiLockPermissionsEx both lock the same object (error 1941 on Windows)');
  }

  if (expect.product.msiService === 'serviceInstall') {
    const svc = t('ServiceInstall').find((r) => r['Name'] === expect.product.serviceName);
    if (!svc) p.push(`ServiceInstall: service ${expect.product.serviceName} is missing`);
    else if (svc['Component_'] !== agent?.['Component_'])
      p.push('ServiceInstall: not in the agent component');
    const ctl = t('ServiceControl').find((r) => r['Name'] === expect.product.serviceName);
    if (!ctl) p.push('ServiceControl: the service is never started/stopped');
    else if ((Number(ctl['Event']) & 0x1) === 0 || (Number(ctl['Event']) & 0x20) === 0)
      p.push('ServiceControl: must start on install and stop on uninstall');
    for (const a of ['InstallServices', 'StartServices', 'StopServices', 'DeleteServices'])
      if (!ies.has(a)) p.push(`InstallExecuteSequence: ${a} is missing`);
  } else {
    const types = new Map(t('CustomAction').map((r) => [r['Action']!, r]));
    for (const a of ['SignetAgentInstall', 'SignetAgentUninstall']) {
      const r = types.get(a);
      if (!r) p.push(`CustomAction ${a} is missing`);
      else if (r['Source'] !== 'AgentExe') p.push(`CustomAction ${a} does not run the installed agent`);
      if (ies.get(a) === undefined) p.push(`InstallExecuteSequence: ${a} is not sequenced`);
    }
    const inst = ies.get('SignetAgentInstall');
    if (
      inst !== undefined &&
      (inst < (ies.get('InstallFiles') ?? 0) || inst > (ies.get('InstallFinalize') ?? 0))
    )
      p.push('SignetAgentInstall must run between InstallFiles and InstallFinalize');
    const un = ies.get('SignetAgentUninstall');
    if (un !== undefined && (un > (ies.get('RemoveFiles') ?? 0) || un < (ies.get('InstallInitialize') ?? 0)))
      p.push('SignetAgentUninstall must run between InstallInitialize and RemoveFiles');
  }
  return p;
}

const LINT_TABLES = [
  'InstallExecuteSequence',
  'InstallUISequence',
  'AdminExecuteSequence',
  'AdvtExecuteSequence',
  'CustomAction',
  'Upgrade',
  'Property',
  'Component',
  'Directory',
  'File',
  'CreateFolder',
  'ServiceInstall',
  'ServiceControl',
  'MsiLockPermissionsEx',
  'LockPermissions',
];

/**
 * Reads the tables the lint needs and the summary Template, in-process (msi-db.ts): one
 * `msiinfo export` per table from Node costs ~10 ms of the main thread apiece.
 */
export async function readMsiFacts(msi: string): Promise<MsiFacts> {
  return readMsiFactsInProcess(msi, LINT_TABLES);
}

export async function lintMsi(msi: string, expect: MsiLintExpect): Promise<string[]> {
  return lintMsiFacts(await readMsiFacts(msi), expect);
}
