/**
 * The osslsigncode backend: a PEM key + chain, a PKCS#12 file, or a PKCS#11 token (through the
 * OpenSSL pkcs11 engine). Passwords and PINs reach osslsigncode through `-readpass FILE` (a 0600
 * temp file, deleted after the run) — never argv; `-readpass` also feeds the engine's token PIN.
 * Timestamping: one `sign -ts URL` per attempt, TSAs tried in order, each with retries and backoff.
 */
import { SignetError } from '../errors.ts';
import { logger } from '../log.ts';
import { resolveSecret, type SecretRef } from '../secrets.ts';
import type { ProduceInput } from './frame.ts';
import { backoffDelays, sleep } from './retry.ts';
import { withSecretFile } from './secret-file.ts';
import { osslsigncodeEnv } from './tool-env.ts';

export const DEFAULT_PKCS11_ENGINE = '/usr/lib/x86_64-linux-gnu/engines-3/pkcs11.so';

export interface OsslKeySpec {
  /** Certificate chain (PEM/DER): leaf first. */
  certs?: string;
  /** PEM/DER private key file. */
  key?: string;
  pkcs12?: string;
  pkcs11?: { module: string; engine?: string; cert: string; key: string };
}

export interface OsslSignArgsInput extends OsslKeySpec {
  input: string;
  output: string;
  digest: string;
  description?: string;
  url?: string;
  /** File holding the password / PIN (-readpass). */
  passFile?: string;
  /** One RFC 3161 TSA for this attempt. */
  tsUrl?: string;
  nest?: boolean;
  msi?: boolean;
}

/** Pure: the `osslsigncode sign` argv. Secrets never appear here, only the path of a pass file. */
export function osslSignArgs(o: OsslSignArgsInput): string[] {
  const args = ['sign'];
  if (o.pkcs11) {
    args.push('-pkcs11engine', o.pkcs11.engine ?? DEFAULT_PKCS11_ENGINE, '-pkcs11module', o.pkcs11.module);
    if (o.certs) args.push('-certs', o.certs);
    else args.push('-pkcs11cert', o.pkcs11.cert);
    args.push('-key', o.pkcs11.key);
  } else if (o.pkcs12) {
    args.push('-pkcs12', o.pkcs12);
  } else {
    if (!o.certs || !o.key)
      throw new SignetError('E_SIGN_KEY_MISSING', 'osslsigncode: cert and key are required');
    args.push('-certs', o.certs, '-key', o.key);
  }
  if (o.passFile) args.push('-readpass', o.passFile);
  args.push('-h', o.digest);
  if (o.description) args.push('-n', o.description);
  if (o.url) args.push('-i', o.url);
  if (o.tsUrl) args.push('-ts', o.tsUrl);
  if (o.nest) args.push('-nest');
  if (o.msi) args.push('-add-msi-dse');
  args.push('-in', o.input, '-out', o.output);
  return args;
}

export interface TimestampPlan {
  urls: string[];
  retries: number;
  retryWaitMs: number;
  timeoutMs: number;
}

/** One attempt in the TSA schedule: which URL, and how long to wait before it. */
export interface TsaAttempt {
  url: string;
  waitMs: number;
}

/** Pure: TSAs in order, each tried 1 + retries times with exponential backoff between tries. */
export function tsaSchedule(plan: TimestampPlan): TsaAttempt[] {
  const out: TsaAttempt[] = [];
  for (const url of plan.urls) {
    out.push({ url, waitMs: 0 });
    for (const w of backoffDelays(plan.retries, plan.retryWaitMs)) out.push({ url, waitMs: w });
  }
  return out;
}

export type OsslFailure = 'tsa' | 'secret' | 'key' | 'other';

/** Pure: what a failed `osslsigncode sign` run was about, from its output. */
export function classifyOsslFailure(text: string): OsslFailure {
  if (
    /PIN incorrect|PIN_INCORRECT|Wrong password|bad decrypt|mac verify failure|maybe wrong password|PIN_LEN_RANGE/i.test(
      text,
    )
  )
    return 'secret';
  if (
    /timestamping failed|timestamp reply|Unable to set unauthenticated attributes|HTTP failure|CURL failure|Failed to get data from/i.test(
      text,
    )
  )
    return 'tsa';
  if (
    /Failed to read key or certificates|private key was not found|Failed to load|No such file|Failed to open|Engine .* failed|could not load the shared library/i.test(
      text,
    )
  )
    return 'key';
  return 'other';
}

export interface OsslRunContext {
  program: string;
  runner: import('../exec/runner.ts').Runner;
  timeoutMs: number;
  digest: string;
  url?: string;
  keys: OsslKeySpec;
  password?: SecretRef;
  timestamp?: TimestampPlan;
  /** Extra environment, e.g. SOFTHSM2_CONF. */
  env?: Record<string, string>;
}

function tail(text: string, n = 8): string {
  return text.trim().split('\n').slice(-n).join('\n');
}

/** Time limit for one attempt: the TSA budget plus room to hash and sign the file (10 MB/s worst case). */
function attemptTimeout(ctx: OsslRunContext, size: number, withTsa: boolean): number {
  const hashing = 2_000 + Math.ceil(size / 10_000);
  return withTsa && ctx.timestamp
    ? Math.min(ctx.timeoutMs, ctx.timestamp.timeoutMs + hashing)
    : ctx.timeoutMs;
}

export async function osslProduce(ctx: OsslRunContext, p: ProduceInput): Promise<void> {
  const secret = ctx.password ? resolveSecret(ctx.password, 'signing password/PIN') : undefined;
  const run = async (passFile: string | undefined): Promise<void> => {
    const msi = /\.msi$/i.test(p.output);
    const base = {
      ...ctx.keys,
      input: p.input,
      output: p.output,
      digest: ctx.digest,
      description: p.description,
      nest: p.nest,
      msi,
      ...(ctx.url ? { url: ctx.url } : {}),
      ...(passFile ? { passFile } : {}),
    };
    const attempts: (TsaAttempt | undefined)[] = ctx.timestamp ? tsaSchedule(ctx.timestamp) : [undefined];
    const failures: string[] = [];
    for (const attempt of attempts) {
      if (attempt?.waitMs) await sleep(attempt.waitMs);
      const args = osslSignArgs(attempt ? { ...base, tsUrl: attempt.url } : base);
      let text = '';
      let exitCode = 0;
      let timedOut = false;
      try {
        const r = await ctx.runner.run(ctx.program, args, {
          allowFailure: true,
          outputs: [p.output],
          input: '',
          timeoutMs: attemptTimeout(ctx, p.size, Boolean(attempt)),
          label: 'osslsigncode sign',
          env: osslsigncodeEnv(ctx.env),
        });
        text = `${r.stdout}\n${r.stderr}`;
        exitCode = r.exitCode;
      } catch (e) {
        if (e instanceof SignetError && e.code === 'E_TOOL_TIMEOUT') timedOut = true;
        else throw e;
      }
      if (!timedOut && exitCode === 0) {
        if (attempt && failures.length)
          logger.info(`timestamped by ${attempt.url} after ${failures.length} failed attempt(s)`);
        return;
      }
      const kind = timedOut ? (attempt ? 'tsa' : 'other') : classifyOsslFailure(text);
      if (kind === 'secret') {
        throw new SignetError(
          'E_SIGN_BAD_SECRET',
          `osslsigncode: the password or PIN was rejected:\n${tail(text)}`,
          {
            details: { exitCode },
          },
        );
      }
      if (kind === 'key') {
        throw new SignetError(
          'E_SIGN_KEY_MISSING',
          `osslsigncode: cannot load the key or certificates:\n${tail(text)}`,
          {
            details: { exitCode },
          },
        );
      }
      if (kind !== 'tsa' || !attempt) {
        if (timedOut) throw new SignetError('E_TOOL_TIMEOUT', 'osslsigncode sign: timed out');
        throw new SignetError('E_SIGN_FAILED', `osslsigncode sign exited ${exitCode}:\n${tail(text)}`, {
          details: { exitCode },
        });
      }
      const why = timedOut ? 'timed out' : tail(text, 3).replace(/\n/g, ' | ');
      failures.push(`${attempt.url}: ${why}`);
      logger.warn(
        `timestamp authority ${attempt.url} failed (${timedOut ? 'timeout' : 'error'}); trying the next attempt`,
      );
    }
    throw new SignetError(
      'E_TIMESTAMP_FAILED',
      `every timestamp authority failed:\n  - ${failures.join('\n  - ')}`,
      {
        details: { attempts: failures.length, urls: ctx.timestamp?.urls ?? [] },
      },
    );
  };
  if (secret !== undefined) return withSecretFile(secret, run);
  return run(undefined);
}
