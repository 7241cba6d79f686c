import { describe, expect, it } from 'vitest';
import { configGuardCommand, configGuardEncoded, configGuardScript } from './config-guard.ts';

describe('the MSI folder check', () => {
  it('is PowerShell passed as -EncodedCommand (UTF-16LE base64): nothing for the MSI formatter to touch', () => {
    const product = { vendor: 'Example Vendor', product: 'Agent' };
    const b64 = configGuardEncoded(product);
    expect(b64).toMatch(/^[A-Za-z0-9+/]+=*$/);
    expect(Buffer.from(b64, 'base64').toString('utf16le')).toBe(configGuardScript(product));
    expect(configGuardCommand(product)).toBe(
      `-NoLogo -NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand ${b64}`,
    );
    const script = configGuardScript(product);
    expect(script).toContain("$vendorDir = Join-Path $env:ProgramData 'Example Vendor'");
    expect(script).toContain("$configDir = Join-Path $vendorDir 'Agent'");
    expect(script).toContain('[IO.FileAttributes]::ReparsePoint');
    expect(script).toMatch(/-not \$item\.PSIsContainer\) \{\n.*\n\s+exit 8/);
    expect(script).toContain("$owner -ne 'S-1-5-32-544' -and $owner -ne 'S-1-5-18'");
    expect(script).toMatch(/exit 9\n/);
    expect(script).toContain("$ErrorActionPreference = 'Stop'"); // a failing check fails the install
    // names are PowerShell single-quoted literals
    expect(configGuardScript({ vendor: "O'Brien", product: 'A' })).toContain("'O''Brien'");
  });
});
