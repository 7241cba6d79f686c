import { copyFileSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildTestAgent } from '../../../test/helpers/agent.ts';
import { tempDir } from '../../../test/helpers/tmp.ts';
import { TEST_UPGRADE_CODE, testWixValues } from '../../../test/helpers/wix-values.ts';
import { defaultRunner } from '../exec/runner.ts';
import { deriveUpgradeCode, outputBaseName, upgradeCodeOf } from './build.ts';
import { msiextractArgs, sevenZipArgs } from './checks.ts';
import { productConfigSchema } from './config.ts';
import { fingerprint } from './fingerprint.ts';
import {
  inclusiveUpgradeIdt,
  lintMsiFacts,
  lockPermissionsIdt,
  type MsiFacts,
  msibuildArgs,
  parseIdt,
  readMsiFacts,
  renderWix,
  runWixl,
  WIX_SOURCE,
  wixlArgs,
  wixlProblems,
} from './msi.ts';
import { compressionDirective, makensisArgs, renderNsis } from './nsis.ts';
import { validateSite } from './site.ts';
import { BUILTIN_TEMPLATES, loadTemplate, renderTemplate } from './template.ts';

const UPGRADE = TEST_UPGRADE_CODE;

describe('argv builders (pure)', () => {
  it('builds the exact command lines', () => {
    expect(makensisArgs('installer.nsi')).toEqual(['-V2', '-WX', '-INPUTCHARSET', 'UTF8', 'installer.nsi']);
    expect(wixlArgs('a.wxs', 'a.msi')).toEqual(['-a', 'x64', '-o', 'a.msi', 'a.wxs']);
    expect(sevenZipArgs('/o/a.exe', '/x')).toEqual(['x', '-y', '-bd', '-bso0', '-bsp0', '-o/x', '/o/a.exe']);
    expect(msiextractArgs('/o/a.msi', '/x')).toEqual(['-C', '/x', '/o/a.msi']);
    const p = productConfigSchema.parse({});
    expect(msibuildArgs('a.msi', ['t.idt', 'u.idt'], p)).toEqual(['a.msi', '-i', 't.idt', '-i', 'u.idt']);
    expect(msibuildArgs('a.msi', ['t.idt'], { ...p, removeConfigOnUninstall: false })).toEqual([
      'a.msi',
      '-i',
      't.idt',
      '-q',
      "UPDATE `Component` SET `Attributes` = 272 WHERE `Component` = 'SiteConfigComponent'",
    ]);
    expect(compressionDirective('none')).toBe('SetCompress off');
    expect(compressionDirective('zlib')).toBe('SetCompressor /FINAL zlib');
    expect(compressionDirective('lzma')).toBe('SetCompressor /SOLID /FINAL lzma');
  });

  it('writes the lock-permissions table as IDT with protected SYSTEM+Administrators DACLs', () => {
    const t = parseIdt(lockPermissionsIdt());
    expect(t.rows).toEqual([
      {
        MsiLockPermissionsEx: 'SignetLockConfigDir',
        LockObject: 'DATADIR',
        Table: 'CreateFolder',
        SDDLText: 'O:BAG:SYD:PAI(A;OICI;FA;;;SY)(A;OICI;FA;;;BA)',
        Condition: '',
      },
      {
        MsiLockPermissionsEx: 'SignetLockSiteJson',
        LockObject: 'SiteJson',
        Table: 'File',
        SDDLText: 'O:BAG:SYD:PAI(A;;FA;;;SY)(A;;FA;;;BA)',
        Condition: '',
      },
    ]);
  });

  it('makes the upgrade row of SIGNET_UPGRADE_FOUND inclusive of the same version', () => {
    const exported =
      'UpgradeCode\tVersionMin\tVersionMax\tLanguage\tAttributes\tRemove\tActionProperty\r\n' +
      's38\tS20\tS20\tS255\ti4\tS255\ts72\r\nUpgrade\tUpgradeCode\tVersionMin\tVersionMax\tLanguage\tAttributes\r\n' +
      '{A}\t1.2.3\t\t\t2\t\tSIGNET_NEWER_FOUND\r\n{A}\t0.0.0\t1.2.3\t\t256\t\tSIGNET_UPGRADE_FOUND\r\n';
    expect(parseIdt(inclusiveUpgradeIdt(exported)).rows.map((r) => r['Attributes'])).toEqual(['2', '768']);
  });

  it('flags every wixl warning or critical line', () => {
    expect(wixlProblems('')).toEqual([]);
    expect(
      wixlProblems(
        "(wixl:1): GLib-GObject-WARNING **: no property named 'Permanent'\nok\n(wixl:2): CRITICAL **: assertion failed",
      ),
    ).toHaveLength(2);
  });

  it('derives a stable UpgradeCode per product and names outputs from identifiers only', () => {
    expect(deriveUpgradeCode('V', 'P')).toBe(deriveUpgradeCode('V', 'P'));
    expect(deriveUpgradeCode('V', 'P')).not.toBe(deriveUpgradeCode('V', 'Q'));
    expect(deriveUpgradeCode('V', 'P')).toMatch(
      /^[0-9A-F]{8}-[0-9A-F]{4}-5[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}$/,
    );
    const p = productConfigSchema.parse({ product: 'My Agent', upgradeCode: `{${UPGRADE.toLowerCase()}}` });
    expect(upgradeCodeOf(p)).toBe(UPGRADE);
    const site = validateSite(
      { siteCode: 'ACME-HQ', serverUrl: 'https://x', enrollmentKey: 'k'.repeat(20), keyVersion: 3 },
      's',
    ).site!;
    const fp = fingerprint(site.enrollmentKey, 3);
    expect(outputBaseName('{product}-{site}-v{keyVersion}-{fp}', p, site, fp, '1.2.3')).toBe(
      `My-Agent-ACME-HQ-v3-${fp.hex}`,
    );
    expect(() => outputBaseName('{product}-{nope}', p, site, fp, '1.2.3')).toThrow(/unknown variable/);
    expect(() => outputBaseName('{product}', p, site, fp, '1.2.3')).toThrow(/\{site\}/);
    expect(() => outputBaseName('../{site}', p, site, fp, '1.2.3')).toThrow(/unsafe/);
  });
});

describe('templates', () => {
  it('substitute only declared, validated values', () => {
    const spec = { A: { kind: 'identifier' as const, description: '' } };
    expect(renderTemplate('x {{A}} {{ A }}', { A: 'ok-1' }, spec, 't')).toBe('x ok-1 ok-1');
    expect(() => renderTemplate('{{B}}', { A: 'x' }, spec, 't')).toThrow(/unknown variable/);
    expect(() => renderTemplate('{{A}}', {}, spec, 't')).toThrow(/has no value/);
    expect(() => renderTemplate('{{A', { A: 'x' }, spec, 't')).toThrow(/unbalanced/);
    for (const hostile of ['a"b', 'a$b', '$' + '{x}', 'a\nb', '<x>', 'a&b', '%X%', 'a\\b', ''])
      expect(() => renderTemplate('{{A}}', { A: hostile }, spec, 't'), hostile).toThrow(
        /not a valid identifier/,
      );
  });

  it('the NSIS template must sign its uninstaller with = 0', () => {
    const t = loadTemplate(BUILTIN_TEMPLATES.nsis).text;
    expect(() => renderNsis('Name "x"\n', {}, 'custom.nsi')).toThrow(/uninstfinalize/);
    expect(() => renderNsis(`!uninstfinalize '"./s.sh" "%1"'\n`, {}, 'custom.nsi')).toThrow(/= 0/);
    expect(renderNsis(`!uninstfinalize '"./s.sh" "%1"' = 0\n`, {}, 'custom.nsi')).toContain('= 0');
    expect(t).toMatch(/^Target amd64-unicode$/m);
    expect(t).toMatch(/^RequestExecutionLevel admin$/m);
    // the ACL of the config folder on the NSIS path (Wine's icacls is a no-op: checked here)
    expect(t).toContain(
      'icacls.exe" "$' + '{CONFIG_DIR}" /inheritance:r /grant:r *S-1-5-18:(OI)(CI)F *S-1-5-32-544:(OI)(CI)F',
    );
    expect(t).toContain('File "/oname=site.json" "payload\\site.json"');
  });

  it('the NSIS template refuses a linked or foreign-owned ProgramData folder and takes ownership (Wine cannot show owners)', () => {
    const t = loadTemplate(BUILTIN_TEMPLATES.nsis).text;
    const install = t.slice(t.indexOf('Section "Install"'));
    const order = [
      '!insertmacro SIGNET_REFUSE_FOLDER "$APPDATA\\$' + '{VENDOR}"',
      '!insertmacro SIGNET_REFUSE_FOLDER "$' + '{CONFIG_DIR}"',
      'File "/oname=$' + '{AGENT_FILE}" "payload\\agent.exe"', // nothing written before the check
      'CreateDirectory "$' + '{CONFIG_DIR}"',
      '!insertmacro SIGNET_REFUSE_FOLDER "$APPDATA\\$' + '{VENDOR}"',
      '!insertmacro SIGNET_REFUSE_FOLDER "$' + '{CONFIG_DIR}"',
      'icacls.exe" "$' + '{CONFIG_DIR}" /setowner *S-1-5-32-544',
      'icacls.exe" "$' + '{CONFIG_DIR}" /inheritance:r /grant:r *S-1-5-18:(OI)(CI)F *S-1-5-32-544:(OI)(CI)F',
      'File "/oname=site.json" "payload\\site.json"',
    ];
    let at = 0;
    for (const step of order) {
      const i = install.indexOf(step, at);
      expect(i, step).toBeGreaterThanOrEqual(0);
      at = i + step.length;
    }
    const from = t.indexOf('Function SignetCheckFolder');
    const check = t.slice(from, t.indexOf('FunctionEnd', from));
    expect(check).toContain('kernel32::GetFileAttributesW(w R9) i .r0');
    expect(check).toContain('IntOp $1 $0 & 0x400 ; FILE_ATTRIBUTE_REPARSE_POINT');
    expect(check).toContain('advapi32::GetNamedSecurityInfoW(w R9, i 1, i 1, *p .r1');
    expect(check).toContain('advapi32::IsWellKnownSid(p r1, i 26)'); // Administrators
    expect(check).toContain('advapi32::IsWellKnownSid(p r1, i 22)'); // SYSTEM
    expect(check).toContain('advapi32::EqualSid(p r0, p r1)'); // the installing account
    expect(t).toMatch(/SetErrorLevel 8\n\s+Abort "Refusing/);
  });
});

describe('MSI build and lint (wixl, msibuild, msiinfo)', () => {
  let dir: string;
  let facts: MsiFacts;
  let agentSize: number;
  const product = productConfigSchema.parse({
    vendor: 'Example Vendor',
    serviceName: 'SignetTestAgent',
    msiService: 'serviceInstall',
  });
  const siteJson = Buffer.from('{"x":1}\n');

  async function build(
    name: string,
    values: Record<string, string>,
    p = product,
    template = loadTemplate(BUILTIN_TEMPLATES.wix).text,
  ) {
    const work = join(dir, name);
    mkdirSync(join(work, 'payload'), { recursive: true });
    copyFileSync(await buildTestAgent({ version: '1.2.3' }), join(work, 'payload', 'agent.exe'));
    writeFileSync(join(work, 'payload', 'site.json'), siteJson);
    writeFileSync(join(work, WIX_SOURCE), renderWix(template, values, 'site-installer.wxs'));
    return runWixl({ runner: defaultRunner, workDir: work, product: p });
  }
  const expectFor = (p = product) => ({
    product: p,
    upgradeCode: UPGRADE,
    version: '1.2.3',
    agentSize,
    siteJsonSize: siteJson.length,
  });

  beforeAll(async () => {
    dir = tempDir();
    agentSize = statSync(await buildTestAgent({ version: '1.2.3' })).size;
    facts = await readMsiFacts(await build('svc', testWixValues()));
  });

  it('the built MSI (ServiceInstall mode) passes the lint', () => {
    expect(lintMsiFacts(facts, expectFor())).toEqual([]);
    expect(facts.template).toBe('x64;1033');
    expect(facts.tables['MsiLockPermissionsEx']?.rows).toHaveLength(2);
  });

  it('the agentCommand mode has deferred, non-impersonating custom actions with explicit sequences', async () => {
    const p = { ...product, msiService: 'agentCommand' as const };
    const f = await readMsiFacts(await build('ca', testWixValues('agentCommand'), p));
    expect(lintMsiFacts(f, expectFor(p))).toEqual([]);
    const seq = Object.fromEntries(
      f.tables['InstallExecuteSequence']!.rows.map((r) => [r['Action'], Number(r['Sequence'])]),
    );
    expect(seq['SignetAgentInstall']).toBe(5850);
    expect(seq['SignetAgentUninstall']).toBe(1950);
    expect(seq['RemoveExistingProducts']).toBe(1401);
    expect(f.tables['ServiceInstall']?.rows ?? []).toEqual([]);
  });

  it('removeConfigOnUninstall: false makes the config component permanent', async () => {
    const p = { ...product, removeConfigOnUninstall: false };
    const f = await readMsiFacts(await build('keep', testWixValues(), p));
    expect(lintMsiFacts(f, expectFor(p))).toEqual([]);
    expect(lintMsiFacts(f, expectFor(product))).toEqual([expect.stringMatching(/permanent/)]);
  });

  it('catches each broken rule', () => {
    const mutate = (fn: (f: MsiFacts) => void) => {
      const f = structuredClone(facts);
      fn(f);
      return lintMsiFacts(f, expectFor());
    };
    const ies = (f: MsiFacts) => f.tables['InstallExecuteSequence']!.rows;
    expect(
      mutate((f) => {
        f.template = 'Intel;1033';
      }),
    ).toEqual([expect.stringMatching(/not x64/)]);
    expect(
      mutate((f) =>
        f.tables['InstallExecuteSequence']!.rows.splice(
          ies(f).findIndex((r) => r['Action'] === 'RemoveExistingProducts'),
          1,
        ),
      ),
    ).toEqual([expect.stringMatching(/RemoveExistingProducts is not sequenced/)]);
    expect(mutate((f) => ies(f).push({ Action: 'GhostAction', Condition: '', Sequence: '4500' }))).toEqual([
      expect.stringMatching(/GhostAction is sequenced but exists neither/),
    ]);
    expect(mutate((f) => ies(f).push({ Action: 'GhostAction', Condition: '', Sequence: '' }))).toContainEqual(
      expect.stringMatching(/no sequence number/),
    );
    expect(
      mutate((f) => {
        delete f.tables['MsiLockPermissionsEx'];
      }),
    ).toEqual([expect.stringMatching(/MsiLockPermissionsEx table is missing/)]);
    expect(
      mutate((f) => {
        f.tables['MsiLockPermissionsEx']!.rows[1]!['SDDLText'] = 'O:BAG:SYD:PAI(A;;FA;;;SY)(A;;FR;;;BU)';
      }),
    ).toEqual([expect.stringMatching(/beyond SYSTEM and Administrators/)]);
    // no owner (a pre-made folder stays its creator's), another owner, an unprotected DACL
    for (const sddl of [
      'D:PAI(A;;FA;;;SY)(A;;FA;;;BA)',
      'O:BUG:SYD:PAI(A;;FA;;;SY)(A;;FA;;;BA)',
      'O:BAG:SYD:AI(A;;FA;;;SY)(A;;FA;;;BA)',
    ])
      expect(
        mutate((f) => {
          f.tables['MsiLockPermissionsEx']!.rows[1]!['SDDLText'] = sddl;
        }),
        sddl,
      ).toEqual([expect.stringMatching(/not owned by Administrators or SYSTEM with a protected DACL/)]);
    // the ProgramData folder check: present, elevated, before CreateFolders, Signet's own script
    const ca = (f: MsiFacts) => f.tables['CustomAction']!.rows;
    const row = (f: MsiFacts, action: string) => ca(f).find((r) => r['Action'] === action)!;
    expect(
      mutate((f) => {
        f.tables['CustomAction']!.rows = ca(f).filter((r) => r['Action'] !== 'SignetCheckConfigFolder');
        f.tables['InstallExecuteSequence']!.rows = ies(f).filter(
          (r) => r['Action'] !== 'SignetCheckConfigFolder',
        );
      }),
    ).toEqual([expect.stringMatching(/SignetCheckConfigFolder is missing/)]);
    expect(
      mutate((f) => {
        row(f, 'SignetCheckConfigFolder')['Type'] = String(50 + 1024); // impersonating
      }),
    ).toContainEqual(expect.stringMatching(/SignetCheckConfigFolder has type 1074/));
    expect(
      mutate((f) => {
        row(f, 'SignetCheckConfigFolder')['Type'] = String(50 + 1024 + 2048 + 64); // return ignored
      }),
    ).toEqual([expect.stringMatching(/SignetCheckConfigFolder has type 3186/)]);
    expect(
      mutate((f) => {
        ies(f).find((r) => r['Action'] === 'SignetCheckConfigFolder')!['Sequence'] = '3750';
      }),
    ).toEqual([expect.stringMatching(/before CreateFolders/)]);
    expect(
      mutate((f) => {
        const p = f.tables['Property']!.rows.find((r) => r['Property'] === 'SignetCheckCommand')!;
        p['Value'] = p['Value']!.replace(/-EncodedCommand \S+/, '-EncodedCommand ZQB4AGkAdAAgADAA'); // "exit 0"
      }),
    ).toEqual([expect.stringMatching(/Property SignetCheckCommand is not Signet's folder check/)]);
    expect(
      mutate((f) => {
        row(f, 'SignetSetPowerShell')['Target'] = 'powershell.exe'; // found on PATH
      }),
    ).toEqual([expect.stringMatching(/must set SignetPowerShell to \[System64Folder\]/)]);
    expect(
      mutate((f) => {
        f.tables['Component']!.rows[0]!['Attributes'] = '0';
      }),
    ).toEqual([expect.stringMatching(/not 64-bit/)]);
    expect(
      mutate((f) => {
        f.tables['File']!.rows[0]!['FileSize'] = '1';
      }),
    ).toEqual([expect.stringMatching(/size differs/)]);
    expect(
      mutate((f) => {
        f.tables['Upgrade']!.rows = [];
      }),
    ).toEqual([
      expect.stringMatching(/no row removes earlier versions/),
      expect.stringMatching(/detect-only/),
    ]);
    // what wixl writes for IncludeMaximum="yes" before Signet fixes it with msibuild
    expect(
      mutate((f) => {
        for (const r of f.tables['Upgrade']!.rows) if (r['Attributes'] === '768') r['Attributes'] = '256';
      }),
    ).toEqual([expect.stringMatching(/rotated key would install side by side/)]);
    expect(
      mutate((f) => {
        f.tables['ServiceInstall']!.rows = [];
      }),
    ).toEqual([expect.stringMatching(/ServiceInstall: service/)]);
    expect(
      mutate((f) => {
        f.tables['CustomAction']!.rows.push({
          Action: 'Lone',
          Type: '1042',
          Source: 'AgentExe',
          Target: 'x',
        });
      }),
    ).toEqual([
      expect.stringMatching(/Lone is defined but never sequenced/),
      expect.stringMatching(/impersonates/),
    ]);
  });

  it('a wixl warning fails the build and leaves no MSI', async () => {
    const t = loadTemplate(BUILTIN_TEMPLATES.wix).text.replace(
      '<Component Id="AgentComponent"',
      '<Component Permanent="yes" Id="AgentComponent"',
    );
    await expect(build('warn', testWixValues(), product, t)).rejects.toMatchObject({
      code: 'E_INSTALLER_BUILD_FAILED',
    });
    expect(() => readFileSync(join(dir, 'warn', 'installer.msi'))).toThrow();
  });
});
