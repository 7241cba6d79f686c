import { describe, expect, it } from 'vitest';
import { parseConfig } from '../config/load.ts';
import { SignetError } from '../errors.ts';
import type { Runner, RunOptions, RunResult } from '../exec/runner.ts';
import { defaultRunner as signingRunner } from '../exec/runner.ts';
import { formatDoctor, runDoctor } from './doctor.ts';

/** Pretends some programs are not installed; runs the rest for real. */
class MissingRunner implements Runner {
  readonly missing: Set<string>;
  constructor(missing: string[]) {
    this.missing = new Set(missing);
  }
  run(file: string, args: readonly string[], options?: RunOptions): Promise<RunResult> {
    if (this.missing.has(file))
      return Promise.reject(new SignetError('E_TOOL_MISSING', `program not found: ${file}`));
    return signingRunner.run(file, args, options);
  }
}

describe('doctor', () => {
  it('reports versions of the real tools and passes when the required ones are present', async () => {
    const report = await runDoctor(parseConfig({}, 't'));
    const ossl = report.checks.find((c) => c.name === 'osslsigncode');
    expect(ossl).toMatchObject({ ok: true, required: true });
    expect(ossl?.version).toMatch(/^\d+\.\d+/);
    expect(report.ok).toBe(true);
  });

  it('names what is missing and the command that installs it; jsign profiles require java and the jar', async () => {
    const config = parseConfig(
      {
        signing: {
          profiles: {
            azure: {
              backend: 'jsign',
              jar: '/nonexistent/jsign.jar',
              storetype: 'TRUSTEDSIGNING',
              endpoint: 'weu.codesigning.azure.net',
              account: 'a',
              certificateProfile: 'p',
              storepass: 'env:T',
            },
          },
        },
      },
      't',
    );
    const report = await runDoctor(config, new MissingRunner(['java', 'makensis']));
    expect(report.ok).toBe(false);
    expect(report.missingRequired).toEqual(['java', 'jsign jar (azure)']);
    const java = report.checks.find((c) => c.name === 'java');
    expect(java).toMatchObject({
      ok: false,
      required: true,
      install: 'sudo apt-get install -y default-jre-headless',
    });
    expect(report.checks.find((c) => c.name === 'makensis')).toMatchObject({
      ok: false,
      required: false,
      install: 'sudo apt-get install -y nsis',
    });
    expect(report.checks.find((c) => c.name === 'jsign jar (azure)')?.install).toMatch(
      /github.com\/ebourg\/jsign/,
    );
    const text = formatDoctor(report);
    expect(text).toMatch(/MISSING java/);
    expect(text).toMatch(/missing required: java, jsign jar \(azure\)/);
  });
});
