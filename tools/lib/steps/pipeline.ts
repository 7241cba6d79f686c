/**
 * The release pipeline (GoReleaser's shape): an ordered list of steps over one typed context.
 * A step may `skip(ctx)` (with a reason), `run(ctx)` to do local work, and `publish(ctx)` — the
 * only hook allowed to touch the outside world (push, forge, remote signing). A dry run is the
 * runner never calling `publish`: no `if (dryRun)` scattered through the steps.
 */
import { type SignetError, toSignetError } from '../errors.ts';

export interface Step<C> {
  name: string;
  /** Returns a reason to skip, or false/undefined to run. */
  skip?(ctx: C): string | false | undefined;
  run?(ctx: C): Promise<void> | void;
  publish?(ctx: C): Promise<void> | void;
}

export type StepStatus = 'done' | 'skipped' | 'dry-run' | 'failed' | 'not-run';

export interface StepReport {
  name: string;
  status: StepStatus;
  reason?: string;
  durationMs: number;
  error?: { code: string; message: string };
}

export interface PipelineOptions {
  dryRun?: boolean;
  onStep?(report: StepReport): void;
}

export interface PipelineResult {
  ok: boolean;
  steps: StepReport[];
  error?: SignetError;
}

/** Runs the steps in order; stops at the first failure and reports the rest as not run. */
export async function runPipeline<C>(
  steps: readonly Step<C>[],
  ctx: C,
  options: PipelineOptions = {},
): Promise<PipelineResult> {
  const reports: StepReport[] = [];
  let error: SignetError | undefined;
  for (const step of steps) {
    if (error) {
      reports.push({ name: step.name, status: 'not-run', durationMs: 0 });
      continue;
    }
    const started = performance.now();
    const reason = step.skip?.(ctx);
    let report: StepReport;
    if (reason) {
      report = { name: step.name, status: 'skipped', reason, durationMs: 0 };
    } else {
      try {
        await step.run?.(ctx);
        if (step.publish && !options.dryRun) await step.publish(ctx);
        report = {
          name: step.name,
          status: step.publish && options.dryRun ? 'dry-run' : 'done',
          durationMs: performance.now() - started,
        };
      } catch (e) {
        error = toSignetError(e);
        report = {
          name: step.name,
          status: 'failed',
          durationMs: performance.now() - started,
          error: { code: error.code, message: error.message },
        };
      }
    }
    reports.push(report);
    options.onStep?.(report);
  }
  return error ? { ok: false, steps: reports, error } : { ok: true, steps: reports };
}
