/**
 * Convergence: a publish that fails at any step, re-run, ends with exactly one release carrying
 * exactly the intended assets, published. Each step gets a persistent fault (retries exhausted).
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeForge, type FaultRule } from '../../../test/helpers/fake-forge.ts';
import { tempDir } from '../../../test/helpers/tmp.ts';
import { logger } from '../log.ts';
import { GiteaForge } from './gitea.ts';
import { GitHubForge } from './github.ts';
import { publishRelease } from './publish.ts';

logger.level = 'error';
const work = tempDir('signet-converge-');
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const zip = randomBytes(50_000);
const oldTxt = randomBytes(700);
const newTxt = randomBytes(900);
const extra = randomBytes(100);
const zipPath = join(work, 'agent.zip');
writeFileSync(zipPath, zip);
function txt(content: Buffer): string {
  const dir = join(work, sha(content).slice(0, 8));
  mkdirSync(dir, { recursive: true });
  const p = join(dir, 'notes.txt');
  writeFileSync(p, content);
  return p;
}
const extraPath = join(work, 'old-extra.bin');
writeFileSync(extraPath, extra);

const STEPS: { step: string; fault: Omit<FaultRule, 'times'>; existing: boolean }[] = [
  { step: 'create release (500)', fault: { op: 'create-release', action: { status: 500 } }, existing: false },
  {
    step: 'create release (response lost)',
    fault: { op: 'create-release', action: { reset: 'after' } },
    existing: false,
  },
  { step: 'first upload', fault: { op: 'upload', action: { status: 502 } }, existing: false },
  { step: 'second upload', fault: { op: 'upload', skip: 1, action: { status: 500 } }, existing: false },
  {
    step: 'upload reset mid-body',
    fault: { op: 'upload', skip: 1, action: { reset: 'mid' } },
    existing: false,
  },
  {
    step: 'temporary upload of a replacement',
    fault: { op: 'upload', action: { status: 500 } },
    existing: true,
  },
  {
    step: 'delete of the replaced asset',
    fault: { op: 'delete-asset', action: { status: 500 } },
    existing: true,
  },
  {
    step: 'rename of the temporary asset',
    fault: { op: 'update-asset', action: { status: 500 } },
    existing: true,
  },
  {
    step: 'prune of an extra asset',
    fault: { op: 'delete-asset', skip: 2, action: { status: 503 } },
    existing: true,
  },
  { step: 'gate read-back', fault: { op: 'list-assets', skip: 1, action: { status: 500 } }, existing: true },
  { step: 'un-draft', fault: { op: 'update-release', action: { status: 500 } }, existing: false },
];

for (const flavor of ['github', 'gitea'] as const) {
  describe(`convergence on fake ${flavor}`, () => {
    let fake: FakeForge;
    beforeAll(async () => {
      fake = await FakeForge.start({ flavor });
    });
    afterAll(async () => {
      fake.assertClean();
      await fake.close();
    });
    const forge = (retries: number) => {
      const common = {
        owner: fake.owner,
        repo: fake.repo,
        token: fake.token,
        retry: { retries, baseDelayMs: 1, sleep: async () => {} },
      };
      return flavor === 'github'
        ? new GitHubForge({ apiUrl: fake.apiUrl, ...common })
        : new GiteaForge({ apiUrl: fake.apiUrl, ...common });
    };

    STEPS.forEach(({ step, fault, existing }, i) => {
      it(`fails at: ${step}, then converges on re-run`, async () => {
        const tag = `v3.${i}.0`;
        const want = [zipPath, txt(newTxt)];
        if (existing)
          await publishRelease(forge(0), {
            tag,
            channel: 'stable',
            files: [zipPath, txt(oldTxt), extraPath],
            prune: false,
          });
        fake.addFault({ ...fault, times: Number.POSITIVE_INFINITY });
        const failed = await publishRelease(forge(1), { tag, channel: 'stable', files: want }).then(
          () => undefined,
          (e) => e,
        );
        fake.clearFaults();
        expect(failed, 'the faulty run must fail').toBeDefined();
        if (existing) {
          // a published release never lost its published state on the way
          const mid = fake.releases().filter((r) => r.tag === tag);
          expect(mid.some((r) => !r.draft)).toBe(true);
        }
        const { result } = await publishRelease(forge(0), { tag, channel: 'stable', files: want });
        const rels = fake.releases().filter((r) => r.tag === tag);
        expect(rels).toHaveLength(1);
        expect(rels[0]!.draft).toBe(false);
        expect(rels[0]!.assets.map((a) => a.name).sort()).toEqual(['SHA256SUMS', 'agent.zip', 'notes.txt']);
        expect(rels[0]!.assets.find((a) => a.name === 'notes.txt')!.sha256).toBe(sha(newTxt));
        expect(rels[0]!.assets.find((a) => a.name === 'agent.zip')!.sha256).toBe(sha(zip));
        expect(result!.releaseId).toBe(rels[0]!.id);
        // and a third run changes nothing
        const again = await publishRelease(forge(0), { tag, channel: 'stable', files: want });
        expect(again.plan.changes).toBe(false);
      });
    });
  });
}
