/** Manifests through real parsers: Cargo.lock by package name, TOML strings, package.json edits. */
import { describe, expect, it } from 'vitest';
import { TestRepo } from '../../../test/helpers/git-repo.ts';
import { cargoPackageNames, readVersion, toSpec, updateCargoLock, writeVersion } from './index.ts';

const LOCK = [
  'version = 4',
  '',
  '[[package]]',
  'name = "agent"',
  'version = "0.3.0"',
  '',
  '[[package]]',
  'name = "helper"',
  'version = "0.3.0"',
  '',
].join('\n');

describe('Cargo.lock by package name', () => {
  it('releasing agent leaves helper at the same version alone', () => {
    expect(updateCargoLock(LOCK, ['agent'], '0.4.0')).toBe(
      LOCK.replace('name = "agent"\nversion = "0.3.0"', 'name = "agent"\nversion = "0.4.0"'),
    );
  });
  it('repairs a stale lock entry of the released package', () => {
    const stale = LOCK.replace('name = "agent"\nversion = "0.3.0"', 'name = "agent"\nversion = "0.2.9"');
    expect(updateCargoLock(stale, ['agent'], '0.4.0')).toContain('name = "agent"\nversion = "0.4.0"');
  });
  it('names a workspace: members that inherit the workspace version, not those with their own', () => {
    const repo = TestRepo.create({
      files: {
        'Cargo.toml': '[workspace]\nmembers = ["crates/*"]\n\n[workspace.package]\nversion = "0.3.0"\n',
        'crates/agent/Cargo.toml': '[package]\nname = "agent"\nversion.workspace = true\n',
        'crates/helper/Cargo.toml': '[package]\nname = "helper"\nversion = "0.3.0"\n',
        'crates/broken/Cargo.toml': '[package\n',
      },
    });
    const text = '[workspace]\nmembers = ["crates/*"]\n\n[workspace.package]\nversion = "0.3.0"\n';
    expect(cargoPackageNames(repo.dir, 'Cargo.toml', text)).toEqual(['agent']);
    expect(
      cargoPackageNames(
        repo.dir,
        'crates/helper/Cargo.toml',
        '[package]\nname = "helper"\nversion = "0.3.0"\n',
      ),
    ).toEqual(['helper']);
  });
});

describe('Cargo.toml through a TOML parser', () => {
  const spec = toSpec('Cargo.toml');
  it('a version line inside a multi-line string is not the version', () => {
    const text =
      '[package]\nname = "agent"\ndescription = """\nUpgrade with:\nversion = "9.9.9"\n"""\nversion = "1.2.3"\n';
    expect(readVersion(spec, text)).toBe('1.2.3');
    expect(writeVersion(spec, text, '1.3.0')).toBe(text.replace('version = "1.2.3"', 'version = "1.3.0"'));
  });
  it('dotted keys and inline tables are found; a table header in a string is not a table', () => {
    expect(readVersion(spec, 'package.name = "a"\npackage.version = "2.0.0"\n')).toBe('2.0.0');
    const tricky = '[package]\nname = "a"\nnotes = "[workspace.package]"\nversion = \'3.1.0\' # here\n';
    expect(writeVersion(spec, tricky, '3.2.0')).toBe(tricky.replace("'3.1.0'", "'3.2.0'"));
  });
  it('a [package] without a version gets one after its name', () => {
    const text = '[package]\nname = "agent" # bin\nedition = "2021"\n';
    expect(writeVersion(spec, text, '1.0.0')).toBe(
      '[package]\nname = "agent" # bin\nversion = "1.0.0"\nedition = "2021"\n',
    );
  });
});

describe('package.json through jsonc-parser', () => {
  const spec = toSpec('package.json');
  it('changes only the version bytes, whatever the layout', () => {
    const text =
      '{\n\t"name": "a",\n\t"description": "\\"version\\": \\"9.9.9\\"",\n\t"version": "1.0.0"\n}\n';
    expect(readVersion(spec, text)).toBe('1.0.0');
    expect(writeVersion(spec, text, '1.1.0')).toBe(text.replace('"1.0.0"', '"1.1.0"'));
  });
  it('adds a missing version after "name", in the file\'s indentation', () => {
    const text = '{\n    "name": "a",\n    "private": true\n}\n';
    expect(writeVersion(spec, text, '1.0.0')).toBe(
      '{\n    "name": "a",\n    "version": "1.0.0",\n    "private": true\n}\n',
    );
  });
  it('refuses invalid JSON with the offset', () => {
    expect(() => writeVersion(spec, '{"name": "a",}', '1.0.0')).toThrow(
      /package.json: invalid JSON: .* at offset/,
    );
  });
  it('package-lock.json: version and packages[""].version, nothing else moves', () => {
    const lock =
      '{\n  "name": "a",\n  "version": "1.0.0",\n  "lockfileVersion": 3,\n  "packages": {\n    "": { "name": "a", "version": "0.9.0" },\n    "node_modules/x": { "version": "1.0.0" }\n  }\n}\n';
    expect(writeVersion(toSpec('package-lock.json'), lock, '1.1.0')).toBe(
      lock
        .replace('"version": "1.0.0",\n  "lock', '"version": "1.1.0",\n  "lock')
        .replace('"0.9.0"', '"1.1.0"'),
    );
  });
});
