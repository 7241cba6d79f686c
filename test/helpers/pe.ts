/**
 * Real PE files for signing tests: a small console program built with mingw-w64, optionally
 * padded to a given size with random data (`.incbin` into a read-only section). Built once per
 * machine and cached under the OS temp directory; callers get a fresh copy.
 */
import { randomBytes } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultRunner } from '../../tools/lib/exec/runner.ts';

const CACHE = join(tmpdir(), 'signet-test-pe-cache-v1');

const SOURCE = `#include <stdio.h>
#ifdef PAD
__asm__(".section .rdata,\\"dr\\"\\n.globl signet_pad\\nsignet_pad:\\n.incbin \\"pad.bin\\"\\n.text\\n");
extern const unsigned char signet_pad[];
#endif
int main(int argc, char **argv) {
#ifdef PAD
  if (argc > 5) return signet_pad[argc];
#endif
  (void)argv;
  puts("signet test agent");
  return argc > 3 ? 1 : 0;
}
`;

/** Builds (or reuses) a PE of at least `padBytes` extra bytes and copies it to `dest`. */
export async function buildPe(dest: string, options: { padBytes?: number } = {}): Promise<string> {
  const pad = options.padBytes ?? 0;
  const cached = join(CACHE, `agent-${pad}.exe`);
  if (!existsSync(cached)) {
    const work = join(CACHE, `build-${process.pid}-${pad}`);
    mkdirSync(work, { recursive: true });
    writeFileSync(join(work, 'agent.c'), SOURCE);
    const args = ['-O2', '-s', '-o', join(work, 'agent.exe'), join(work, 'agent.c')];
    if (pad > 0) {
      writeFileSync(join(work, 'pad.bin'), randomBytes(pad));
      args.unshift('-DPAD');
    }
    await defaultRunner.run('x86_64-w64-mingw32-gcc', args, { cwd: work, timeoutMs: 120_000 });
    renameSync(join(work, 'agent.exe'), cached);
  }
  copyFileSync(cached, dest);
  return dest;
}

/** Builds a small MSI around `payload` with wixl (cached by nothing: ~0.3 s). */
export async function buildMsi(dest: string, payload: string, work: string): Promise<string> {
  mkdirSync(work, { recursive: true });
  copyFileSync(payload, join(work, 'agent.exe'));
  const wxs = join(work, 'test.wxs');
  writeFileSync(
    wxs,
    `<?xml version="1.0" encoding="utf-8"?>
<Wix xmlns="http://schemas.microsoft.com/wix/2006/wi">
  <Product Id="*" Name="Signet Test" Language="1033" Version="1.0.0" Manufacturer="Signet Test" UpgradeCode="4a4f7b8e-3c1d-4f5e-9a2b-1c2d3e4f5a6b">
    <Package InstallerVersion="200" Compressed="yes" InstallScope="perMachine" />
    <Media Id="1" Cabinet="test.cab" EmbedCab="yes" />
    <Directory Id="TARGETDIR" Name="SourceDir">
      <Directory Id="ProgramFiles64Folder">
        <Directory Id="INSTALLDIR" Name="SignetTest">
          <Component Id="Agent" Guid="5b6c7d8e-9f0a-4b1c-8d2e-3f4a5b6c7d8e" Win64="yes">
            <File Id="AgentExe" Source="agent.exe" Name="agent.exe" KeyPath="yes" />
          </Component>
        </Directory>
      </Directory>
    </Directory>
    <Feature Id="Main" Level="1"><ComponentRef Id="Agent" /></Feature>
  </Product>
</Wix>
`,
  );
  await defaultRunner.run('wixl', ['-a', 'x64', '-o', dest, 'test.wxs'], {
    cwd: work,
    timeoutMs: 120_000,
    outputs: [dest],
  });
  return dest;
}

/** Builds (or reuses) a small real DLL and copies it to `dest`. */
export async function buildDll(dest: string): Promise<string> {
  const cached = join(CACHE, 'helper.dll');
  if (!existsSync(cached)) {
    const work = join(CACHE, `build-${process.pid}-dll`);
    mkdirSync(work, { recursive: true });
    writeFileSync(
      join(work, 'helper.c'),
      '__declspec(dllexport) int signet_helper(int x) { return x * 2; }\n',
    );
    await defaultRunner.run(
      'x86_64-w64-mingw32-gcc',
      ['-O2', '-s', '-shared', '-o', join(work, 'helper.dll'), join(work, 'helper.c')],
      {
        cwd: work,
        timeoutMs: 120_000,
      },
    );
    renameSync(join(work, 'helper.dll'), cached);
  }
  copyFileSync(cached, dest);
  return dest;
}
