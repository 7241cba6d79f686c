/**
 * The publish gate decides by content: a PE or a Compound File is verified whatever its name
 * (.sys, .scr, .cab, none); everything else is listed as "not a signable type" in the result.
 */
import { copyFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeForge } from '../../../test/helpers/fake-forge.ts';
import { buildDll, buildPe } from '../../../test/helpers/pe.ts';
import { tempDir } from '../../../test/helpers/tmp.ts';
import { signableKind } from '../sign/content-kind.ts';
import { GitHubForge } from './github.ts';
import { publishRelease } from './publish.ts';

const work = tempDir('signet-gate-kind-');
let fake: FakeForge;
let pe: string;
let dll: string;

beforeAll(async () => {
  fake = await FakeForge.start({ flavor: 'github', token: 'canary-gate-kind-token-77' });
  pe = await buildPe(join(work, 'agent.exe'));
  dll = await buildDll(join(work, 'helper.dll'));
}, 60_000);
afterAll(async () => {
  await fake.close();
});

const forge = () =>
  new GitHubForge({
    apiUrl: fake.apiUrl,
    owner: fake.owner,
    repo: fake.repo,
    token: fake.token,
    retry: { retries: 0 },
  });

describe('publish gate by content', () => {
  it('reads the kind from the bytes', () => {
    const sys = join(work, 'driver.sys');
    copyFileSync(pe, sys);
    const noExt = join(work, 'helper');
    copyFileSync(dll, noExt);
    const fakeExe = join(work, 'notes.exe');
    writeFileSync(fakeExe, 'MZ but not a PE'.padEnd(200, '.'));
    expect([signableKind(sys), signableKind(noExt), signableKind(fakeExe)]).toEqual(['exe', 'dll', 'other']);
  });

  for (const name of ['driver.sys', 'screen.scr', 'payload.cab', 'agent']) {
    it(`an unsigned PE named ${name} is refused by the gate before anything is written`, async () => {
      const path = join(work, name);
      copyFileSync(pe, path);
      const before = fake.requests.length;
      const e = await publishRelease(forge(), {
        tag: 'v1.0.0',
        channel: 'stable',
        notes: 'x',
        files: [path],
      }).catch((x) => x);
      expect(e.code).toBe('E_PUBLISH_GATE');
      const seen: string[] = [];
      const e2 = await publishRelease(forge(), {
        tag: 'v1.0.0',
        channel: 'stable',
        notes: 'x',
        files: [path],
        verify: async (p) => {
          seen.push(p);
          throw Object.assign(new Error('unsigned'), { code: 'E_VERIFY_UNSIGNED' });
        },
      }).catch((x) => x);
      expect(e2.code).toBe('E_PUBLISH_GATE');
      // the gate verifies the private snapshot of the named file (the bytes that would be uploaded)
      expect(seen).toHaveLength(1);
      expect(basename(seen[0]!)).toBe(basename(path));
      expect(seen[0]).toMatch(/signet-publish-/);
      expect(
        fake.requests.slice(before).filter((r) => !r.op.startsWith('list') && !r.op.startsWith('get')),
      ).toEqual([]);
    });
  }

  it('other assets are published and listed as "not a signable type"', async () => {
    const txt = join(work, 'readme.txt');
    writeFileSync(txt, 'hello\n');
    const { result } = await publishRelease(forge(), {
      tag: 'v1.1.0',
      channel: 'stable',
      notes: 'x',
      files: [txt],
    });
    expect(result?.unchecked).toEqual([{ name: 'readme.txt', reason: 'not a signable type' }]);
    expect(result?.gate).toMatchObject({ signed: 0, passed: true });
  });
});
