import { describe, expect, it } from 'vitest';
import { SignetError } from '../errors.ts';
import { runPipeline, type Step } from './pipeline.ts';

interface Ctx {
  log: string[];
}

const steps: Step<Ctx>[] = [
  { name: 'plan', run: (c) => void c.log.push('plan') },
  { name: 'optional', skip: () => 'nothing to do', run: (c) => void c.log.push('optional') },
  { name: 'push', run: (c) => void c.log.push('prepare-push'), publish: (c) => void c.log.push('push') },
];

describe('runPipeline', () => {
  it('runs steps in order, honours skip, and calls publish', async () => {
    const ctx: Ctx = { log: [] };
    const result = await runPipeline(steps, ctx);
    expect(ctx.log).toEqual(['plan', 'prepare-push', 'push']);
    expect(result.steps.map((s) => s.status)).toEqual(['done', 'skipped', 'done']);
    expect(result.steps[1]?.reason).toBe('nothing to do');
  });

  it('never calls publish on a dry run', async () => {
    const ctx: Ctx = { log: [] };
    const result = await runPipeline(steps, ctx, { dryRun: true });
    expect(ctx.log).toEqual(['plan', 'prepare-push']);
    expect(result.steps[2]?.status).toBe('dry-run');
  });

  it('stops at the first failure with its code and reports the rest as not run', async () => {
    const ctx: Ctx = { log: [] };
    const failing: Step<Ctx>[] = [
      {
        name: 'sign',
        run: () => {
          throw new SignetError('E_VERIFY_FAILED', 'bad signature');
        },
      },
      ...steps,
    ];
    const result = await runPipeline(failing, ctx);
    expect(result.ok).toBe(false);
    expect(result.error?.code).toBe('E_VERIFY_FAILED');
    expect(result.steps.map((s) => s.status)).toEqual(['failed', 'not-run', 'not-run', 'not-run']);
    expect(ctx.log).toEqual([]);
  });
});
