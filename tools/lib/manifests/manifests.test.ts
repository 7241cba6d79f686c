import { describe, expect, it } from 'vitest';
import { detectType, readVersion, toSpec, writeVersion } from './index.ts';

const CARGO = `# The agent
[package]
name = "agent"   # the binary name
version = "1.2.3"   # bumped by signet
edition = "2021"

[dependencies]
serde = { version = "1.0.200", features = ["derive"] }

[package.metadata.x]
version = "9.9.9"
`;

describe('Cargo.toml', () => {
  const spec = toSpec('Cargo.toml');
  it('reads [package] version and changes only its bytes', () => {
    expect(readVersion(spec, CARGO)).toBe('1.2.3');
    const out = writeVersion(spec, CARGO, '1.3.0');
    expect(out).toBe(CARGO.replace('version = "1.2.3"', 'version = "1.3.0"'));
  });
  it('reads [workspace.package] version when the package inherits it', () => {
    const ws = `[workspace]\nmembers = ["a"]\n\n[ workspace.package ]\r\nversion = '0.4.0'\r\n\n[package]\nname = "x"\nversion.workspace = true\n`;
    expect(readVersion(spec, ws)).toBe('0.4.0');
    expect(writeVersion(spec, ws, '0.5.0')).toBe(ws.replace("'0.4.0'", "'0.5.0'"));
  });
  it('refuses a missing or non-semver version', () => {
    expect(() => readVersion(spec, '[package]\nname = "x"\n')).toThrow(/no \[package\] version/);
    expect(() => readVersion(spec, '[package]\nversion = "1.2"\n')).toThrow(/not semver/);
    expect(() => readVersion(spec, '[package\n')).toThrow(/invalid TOML/);
  });
});

describe('package.json and package-lock.json', () => {
  it('package.json: only the top-level version changes', () => {
    const text =
      '{\n    "name": "dash",\n    "version": "2.0.0",\n    "dependencies": { "x": { "version": "1.0.0" } }\n}';
    const spec = toSpec('dashboard/package.json');
    expect(readVersion(spec, text)).toBe('2.0.0');
    expect(writeVersion(spec, text, '2.1.0')).toBe(text.replace('"2.0.0"', '"2.1.0"'));
    const nested = '{"dependencies":{"a":{"version":"1.0.0"}},"version":"3.0.0"}';
    expect(writeVersion(spec, nested, '3.0.1')).toBe(
      '{"dependencies":{"a":{"version":"1.0.0"}},"version":"3.0.1"}',
    );
  });
  it('package-lock.json: top-level and packages[""] versions, same indentation', () => {
    const lock = `${JSON.stringify(
      {
        name: 'dash',
        version: '2.0.0',
        lockfileVersion: 3,
        packages: { '': { name: 'dash', version: '2.0.0' }, 'node_modules/x': { version: '2.0.0' } },
      },
      null,
      2,
    )}\n`;
    const spec = toSpec('package-lock.json');
    expect(spec.type).toBe('npm-lock');
    const out = writeVersion(spec, lock, '2.1.0');
    const doc = JSON.parse(out);
    expect([doc.version, doc.packages[''].version, doc.packages['node_modules/x'].version]).toEqual([
      '2.1.0',
      '2.1.0',
      '2.0.0',
    ]);
    expect(out).toBe(
      lock
        .replace('"version": "2.0.0",\n  "lockfileVersion"', '"version": "2.1.0",\n  "lockfileVersion"')
        .replace('"name": "dash",\n      "version": "2.0.0"', '"name": "dash",\n      "version": "2.1.0"'),
    );
  });
});

describe('VERSION and regex manifests', () => {
  it('plain file keeps its surrounding whitespace', () => {
    expect(writeVersion(toSpec('VERSION'), '1.0.0\n', '1.0.1')).toBe('1.0.1\n');
    expect(() => readVersion(toSpec('VERSION'), '\n')).toThrow(/empty/);
  });
  it('regex manifest replaces the first group', () => {
    const spec = toSpec({
      path: 'agent/version.h',
      type: 'regex',
      pattern: '#define AGENT_VERSION "([^"]+)"',
    });
    const text = '#pragma once\n#define AGENT_VERSION "1.0.0"\n#define OTHER "1.0.0"\n';
    expect(readVersion(spec, text)).toBe('1.0.0');
    expect(writeVersion(spec, text, '1.1.0')).toBe(
      text.replace('"1.0.0"\n#define OTHER', '"1.1.0"\n#define OTHER'),
    );
    expect(() => toSpec({ path: 'x', type: 'regex' })).toThrow(/needs a pattern/);
  });
  it('detects the type from the file name', () => {
    expect(['Cargo.toml', 'package.json', 'npm-shrinkwrap.json', 'VERSION'].map(detectType)).toEqual([
      'cargo',
      'npm',
      'npm-lock',
      'plain',
    ]);
  });
});
