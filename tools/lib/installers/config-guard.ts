/**
 * The MSI's guard of the ProgramData folder that receives site.json. A standard user can create
 * folders in ProgramData: one made in advance stays theirs (an owner can always rewrite its ACL
 * and read the key), and a junction or symbolic link there would redirect the write. Before
 * CreateFolders, a deferred custom action running as LocalSystem (Impersonate="no") refuses a
 * vendor or configuration folder that is a reparse point, not a folder, or owned by anyone but
 * Administrators or SYSTEM; the MsiLockPermissionsEx rows then make Administrators the owner
 * (`O:BA`) of what the package creates.
 *
 * wixl cannot express the check in its own XML, so the template carries three pieces, all
 * sequenced explicitly (wixl's After/Before drift):
 *   SignetSetPowerShell      type 51: SignetPowerShell = [System64Folder]WindowsPowerShell\v1.0\powershell.exe
 *   SignetCheckConfigFolder  type 50 + deferred + no impersonation: runs [SignetCheckCommand]
 *   SignetCheckCommand       a private property: the PowerShell command line, the script passed as
 *                            -EncodedCommand (base64 of UTF-16LE: nothing in it for the MSI
 *                            formatter or the command-line parser to reinterpret)
 * Private properties (mixed case) cannot be set from the msiexec command line.
 */
import type { ProductConfig } from './config.ts';
import type { MsiFacts } from './msi.ts';

export const CHECK_ACTION = 'SignetCheckConfigFolder';
export const SET_POWERSHELL_ACTION = 'SignetSetPowerShell';
export const POWERSHELL_PROPERTY = 'SignetPowerShell';
export const COMMAND_PROPERTY = 'SignetCheckCommand';
export const POWERSHELL_PATH = '[System64Folder]WindowsPowerShell\\v1.0\\powershell.exe';
/** 50 (exe named by a property) + 1024 (deferred) + 2048 (no impersonation); Return="check". */
export const CHECK_ACTION_TYPE = 50 + 1024 + 2048;

const psQuote = (s: string) => `'${s.replace(/'/g, "''")}'`;

/** The PowerShell script: exit 8 for a link or a non-folder, 9 for a foreign owner, 0 otherwise. */
export function configGuardScript(product: Pick<ProductConfig, 'vendor' | 'product'>): string {
  return [
    "$ErrorActionPreference = 'Stop'",
    `$vendorDir = Join-Path $env:ProgramData ${psQuote(product.vendor)}`,
    `$configDir = Join-Path $vendorDir ${psQuote(product.product)}`,
    'foreach ($p in @($vendorDir, $configDir)) {',
    '  $item = Get-Item -LiteralPath $p -Force -ErrorAction SilentlyContinue',
    '  if ($null -eq $item) { continue }',
    '  if (($item.Attributes -band [IO.FileAttributes]::ReparsePoint) -or -not $item.PSIsContainer) {',
    '    Write-Output "Signet: $p is a link (reparse point) or not a folder; remove it and install again"',
    '    exit 8',
    '  }',
    '  $owner = (Get-Acl -LiteralPath $p).GetOwner([Security.Principal.SecurityIdentifier]).Value',
    "  if ($owner -ne 'S-1-5-32-544' -and $owner -ne 'S-1-5-18') {",
    '    Write-Output "Signet: $p is owned by $owner, not Administrators or SYSTEM; remove it and install again"',
    '    exit 9',
    '  }',
    '}',
    'exit 0',
  ].join('\n');
}

/** The -EncodedCommand value: base64 of the script as UTF-16LE. */
export function configGuardEncoded(product: Pick<ProductConfig, 'vendor' | 'product'>): string {
  return Buffer.from(configGuardScript(product), 'utf16le').toString('base64');
}

export function configGuardCommand(product: Pick<ProductConfig, 'vendor' | 'product'>): string {
  return `-NoLogo -NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand ${configGuardEncoded(product)}`;
}

/** Lint rules over the exported tables: the guard is present, elevated and runs before CreateFolders. */
export function configGuardProblems(facts: MsiFacts, product: ProductConfig): string[] {
  const p: string[] = [];
  const rows = (name: string) => facts.tables[name]?.rows ?? [];
  const ca = new Map(rows('CustomAction').map((r) => [r['Action']!, r]));
  const ies = new Map(rows('InstallExecuteSequence').map((r) => [r['Action']!, r]));
  const props = new Map(rows('Property').map((r) => [r['Property']!, r['Value'] ?? '']));
  const seq = (a: string) => Number(ies.get(a)?.['Sequence'] ?? Number.NaN);
  const check = ca.get(CHECK_ACTION);
  if (!check) {
    p.push(`CustomAction ${CHECK_ACTION} is missing (a pre-made or linked ProgramData folder would be used)`);
    return p;
  }
  if (Number(check['Type']) !== CHECK_ACTION_TYPE)
    p.push(
      `CustomAction ${CHECK_ACTION} has type ${check['Type']}, not ${CHECK_ACTION_TYPE} (deferred, not impersonating, return checked)`,
    );
  if (check['Source'] !== POWERSHELL_PROPERTY || check['Target'] !== `[${COMMAND_PROPERTY}]`)
    p.push(`CustomAction ${CHECK_ACTION} must run [${POWERSHELL_PROPERTY}] with [${COMMAND_PROPERTY}]`);
  if (props.get(COMMAND_PROPERTY) !== configGuardCommand(product))
    p.push(
      `Property ${COMMAND_PROPERTY} is not Signet's folder check for ${product.vendor}\\${product.product}`,
    );
  const set = ca.get(SET_POWERSHELL_ACTION);
  // type 51 (set a property), immediate; wixl adds the meaningless no-impersonation bit (2048)
  const setType = Number(set?.['Type']);
  if (
    !set ||
    (setType & 63) !== 51 ||
    setType & 1024 ||
    set['Source'] !== POWERSHELL_PROPERTY ||
    set['Target'] !== POWERSHELL_PATH
  )
    p.push(`CustomAction ${SET_POWERSHELL_ACTION} must set ${POWERSHELL_PROPERTY} to ${POWERSHELL_PATH}`);
  const at = seq(CHECK_ACTION);
  if (!(at > seq('InstallInitialize') && at < seq('CreateFolders')))
    p.push(
      `InstallExecuteSequence: ${CHECK_ACTION} must run after InstallInitialize and before CreateFolders`,
    );
  if (
    !(
      seq(SET_POWERSHELL_ACTION) > seq('CostFinalize') &&
      seq(SET_POWERSHELL_ACTION) < seq('InstallInitialize')
    )
  )
    p.push(
      `InstallExecuteSequence: ${SET_POWERSHELL_ACTION} must run between CostFinalize and InstallInitialize`,
    );
  const condition = ies.get(CHECK_ACTION)?.['Condition'] ?? '';
  if (condition !== '' && condition !== 'NOT REMOVE="ALL"')
    p.push(`InstallExecuteSequence: ${CHECK_ACTION} runs only under "${condition}"`);
  return p;
}
