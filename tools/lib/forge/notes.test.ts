import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { tempDir } from '../../../test/helpers/tmp.ts';
import { checksumTable, defaultTemplatesDir, loadNotesTemplate, renderNotes, sha256sums } from './notes.ts';

const assets = [
  { name: 'b.msi', size: 2048, sha256: 'b'.repeat(64) },
  { name: 'a.exe', size: 10, sha256: 'a'.repeat(64) },
];

describe('notes and checksums', () => {
  it('SHA256SUMS is accepted by sha256sum -c', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'x.bin'), 'hello');
    writeFileSync(join(dir, 'y.bin'), 'world');
    const sums = execFileSync('sha256sum', ['x.bin', 'y.bin'], { cwd: dir }).toString();
    const ours = sha256sums(
      sums
        .trim()
        .split('\n')
        .map((l) => ({ name: l.split('  ')[1]!, sha256: l.split('  ')[0]!, size: 5 }))
        .reverse(),
    );
    expect(ours).toBe(sums);
    writeFileSync(join(dir, 'SHA256SUMS'), ours);
    expect(execFileSync('sha256sum', ['-c', 'SHA256SUMS'], { cwd: dir }).toString()).toMatch(
      /x.bin: OK\ny.bin: OK/,
    );
  });

  it('renders the stable template with notes and a sorted table', () => {
    const { text, path } = loadNotesTemplate('stable');
    expect(path).toBe(join(defaultTemplatesDir()!, 'stable.md'));
    const body = renderNotes(text, {
      channel: 'stable',
      tag: 'v1.0.0',
      version: '1.0.0',
      title: 'Agent 1.0.0',
      notes: '- fixed {{tag}} handling',
      assets,
    });
    expect(body).toContain('## Agent 1.0.0');
    // values are not re-expanded
    expect(body).toContain('- fixed {{tag}} handling');
    expect(body.indexOf('a.exe')).toBeLessThan(body.indexOf('b.msi'));
    expect(body).toContain(`| \`b.msi\` | 2.0 KiB | \`${'b'.repeat(64)}\` |`);
  });

  it('the beta body carries the prerelease notice and no changelog', () => {
    const { text } = loadNotesTemplate('beta');
    const body = renderNotes(text, {
      channel: 'beta',
      tag: 'v1.1.0-beta.2',
      version: '1.1.0-beta.2',
      title: 't',
      notes: 'SECRET-CHANGELOG',
      assets,
    });
    expect(body).toMatch(/Prerelease \/ test build/);
    expect(body).not.toContain('SECRET-CHANGELOG');
    expect(body).toContain('a'.repeat(64));
  });

  it('names the signer and flags a development certificate', () => {
    const body = renderNotes('{{signer}}', {
      channel: 'beta',
      tag: 't',
      version: '1',
      title: 't',
      assets,
      signer: { subject: 'CN=Dev', leafSha256: 'c'.repeat(64), digest: 'sha256', signatures: 1, dev: true },
    });
    expect(body).toMatch(/CN=Dev.*development certificate/);
  });

  it('refuses unknown variables and escapes table cells', () => {
    expect(() =>
      renderNotes('{{nope}}', { channel: 'stable', tag: 't', version: '1', title: 't', assets }),
    ).toThrow(/unknown variable/);
    expect(checksumTable([{ name: 'a|b', size: 1, sha256: 'f' }])).toContain('a\\|b');
  });

  it('project templates override the defaults', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'stable.md'), 'custom {{version}}');
    expect(loadNotesTemplate('stable', dir).text).toBe(readFileSync(join(dir, 'stable.md'), 'utf8'));
    expect(() => loadNotesTemplate('beta', dir)).toThrow(/not found/);
  });
});
