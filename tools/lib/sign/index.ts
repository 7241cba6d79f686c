/**
 * The signing layer's entry points: `createSigner(config, {profile, overrides, releasePath})`
 * picks a named profile (flags and env override it), `signFiles` signs many files with bounded
 * concurrency, `verifyFile` / `inspectSignature` verify. Fail closed everywhere.
 */
import { availableParallelism } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import type { SignedArtifact } from '../artifact.ts';
import type { SignetConfig } from '../config/schema.ts';
import { SignetError, toSignetError } from '../errors.ts';
import { defaultRunner, type Runner } from '../exec/runner.ts';
import { logger } from '../log.ts';
import { parseSecretRef, type SecretRef } from '../secrets.ts';
import { profileSchema, type SigningProfile } from './config.ts';
import { type FrameContext, signInFrame } from './frame.ts';
import { osslProduce, type TimestampPlan } from './osslsigncode.ts';
import type { Signer, SignOptions } from './types.ts';
import { type VerifyOptions, verifyFile } from './verify.ts';

export type { SignedArtifact } from '../artifact.ts';
export type { SigningProfile } from './config.ts';
export { type DevCert, makeDevCert } from './devcert.ts';
export type { Signer, SignOptions } from './types.ts';
export { inspectSignature, type VerifyOptions, type VerifyReport, verifyFile } from './verify.ts';

/** Flag/env overrides applied on top of the profile from the config. */
export interface ProfileOverrides {
  /** Replace the TSA list. */
  tsaUrls?: string[];
  /** Sign without a timestamp (refused on the release path). */
  noTimestamp?: boolean;
  caFile?: string;
  leafSha256?: string[];
  subject?: string;
  digest?: SigningProfile['digest'];
  /** Remote backend: return the unsigned file (signed: false) when the server fails. Never on the release path. */
  allowUnsignedFallback?: boolean;
}

export interface CreateSignerOptions {
  profile?: string;
  overrides?: ProfileOverrides;
  /** The release path: timestamps required (unless `timestamp: false`), dev profiles and fallbacks refused. */
  releasePath?: boolean;
  /** Relative paths in the profile resolve against this directory (the config file's). */
  baseDir?: string;
  runner?: Runner;
  env?: NodeJS.ProcessEnv;
}

/** A profile after overrides, with absolute paths. */
export type ResolvedProfile = SigningProfile & { name: string };

function abs(base: string, p: string | undefined): string | undefined {
  if (p === undefined) return undefined;
  if (p.startsWith('pkcs11:')) return p;
  return isAbsolute(p) ? p : resolve(base, p);
}

/** Picks and completes a profile: name from options, SIGNET_SIGNING_PROFILE, then `defaultProfile`. */
export function resolveProfile(config: SignetConfig, options: CreateSignerOptions = {}): ResolvedProfile {
  const env = options.env ?? process.env;
  const name = options.profile ?? env['SIGNET_SIGNING_PROFILE'] ?? config.signing.defaultProfile;
  const raw = config.signing.profiles[name];
  if (!raw) {
    const known = Object.keys(config.signing.profiles);
    throw new SignetError(
      'E_PROFILE_UNKNOWN',
      `signing profile "${name}" is not defined${known.length ? ` (known: ${known.join(', ')})` : ' (no profiles configured)'}`,
      { details: { profile: name, known } },
    );
  }
  const base = options.baseDir ?? process.cwd();
  const o = options.overrides ?? {};
  const envTsa = env['SIGNET_TSA_URLS'];
  const tsaUrls = o.tsaUrls ?? (envTsa ? envTsa.split(/[\s,]+/).filter(Boolean) : undefined);
  const p = profileSchema.parse(structuredClone(raw)) as SigningProfile;
  if (o.noTimestamp) p.timestamp = false;
  else if (tsaUrls?.length) {
    p.timestamp = {
      ...(p.timestamp === false ? { retries: 2, retryWaitMs: 1000, timeoutMs: 15000 } : p.timestamp),
      urls: tsaUrls,
    };
  }
  if (o.digest) p.digest = o.digest;
  const verify = { ...p.verify };
  if (o.caFile) verify.caFile = o.caFile;
  if (o.leafSha256?.length) verify.leafSha256 = o.leafSha256;
  if (o.subject) verify.subject = o.subject;
  const caFile = abs(base, verify.caFile);
  const tsaCaFile = abs(base, verify.tsaCaFile);
  p.verify = {
    leafSha256: verify.leafSha256,
    ...(caFile ? { caFile } : {}),
    ...(tsaCaFile ? { tsaCaFile } : {}),
    ...(verify.subject ? { subject: verify.subject } : {}),
  };
  if (p.backend === 'osslsigncode') {
    for (const k of ['cert', 'key', 'pkcs12'] as const) {
      const v = abs(base, p[k]);
      if (v) p[k] = v;
    }
    if (p.pkcs11) p.pkcs11 = { ...p.pkcs11, module: abs(base, p.pkcs11.module) as string };
  } else if (p.backend === 'jsign') {
    p.jar = abs(base, p.jar) as string;
    const cf = abs(base, p.certfile);
    if (cf) p.certfile = cf;
  } else if (p.backend === 'remote') {
    const cf = abs(base, p.caFile);
    if (cf) p.caFile = cf;
  }
  return { ...p, name };
}

/** The timestamp plan of a profile, or undefined when it does not timestamp. Enforces the release rule. */
export function timestampPlan(p: ResolvedProfile, releasePath: boolean): TimestampPlan | undefined {
  if (p.timestamp === false) return undefined;
  if (!p.timestamp.urls.length) {
    if (releasePath) {
      throw new SignetError(
        'E_TIMESTAMP_FAILED',
        `profile "${p.name}": no timestamp authority configured (signing.profiles.${p.name}.timestamp.urls)`,
        {
          hint: 'Add RFC 3161 TSA URLs to the profile, or set `timestamp: false` if unstamped signatures are intended.',
        },
      );
    }
    return undefined;
  }
  return { ...p.timestamp };
}

export function verifyOptionsOf(p: ResolvedProfile, runner?: Runner): VerifyOptions {
  const v: VerifyOptions = { leafSha256: p.verify.leafSha256 };
  if (p.verify.caFile) v.caFile = p.verify.caFile;
  if (p.verify.tsaCaFile) v.tsaCaFile = p.verify.tsaCaFile;
  if (p.verify.subject) v.subject = p.verify.subject;
  if (p.backend === 'osslsigncode') v.osslsigncode = p.osslsigncode;
  if (runner) v.runner = runner;
  return v;
}

export function createSigner(config: SignetConfig, options: CreateSignerOptions = {}): Signer {
  const p = resolveProfile(config, options);
  const releasePath = Boolean(options.releasePath);
  const runner = options.runner ?? defaultRunner;
  if (releasePath && p.dev) {
    throw new SignetError(
      'E_SIGN_KEY_MISSING',
      `profile "${p.name}" is a dev profile and cannot sign on the release path`,
      {
        hint: 'Use a release profile; dev certificates are for demos and tests only.',
      },
    );
  }
  if (releasePath && options.overrides?.allowUnsignedFallback) {
    throw new SignetError(
      'E_SIGN_UNSIGNED_FALLBACK_REFUSED',
      '--allow-unsigned-fallback is refused on the release path',
    );
  }
  if (releasePath && options.overrides?.noTimestamp && config.signing.profiles[p.name]?.timestamp !== false) {
    throw new SignetError(
      'E_USAGE',
      '--no-timestamp is refused on the release path (set `timestamp: false` in the profile to mean it)',
    );
  }
  const requireTimestamp = releasePath && p.timestamp !== false;
  const ctx: FrameContext = {
    profile: p.name,
    dev: p.dev,
    verify: verifyOptionsOf(p, runner),
    policy: { requireTimestamp },
    osslsigncode: p.backend === 'osslsigncode' ? p.osslsigncode : 'osslsigncode',
    runner,
  };
  const verify = (path: string): Promise<SignedArtifact> =>
    verifyFile(path, ctx.verify, { profile: p.name, requireTimestamp, dev: p.dev });

  if (p.backend === 'osslsigncode') {
    const keys = osslKeys(p);
    const password = (p.pkcs11?.pin ?? p.password) as SecretRef | undefined;
    return {
      profile: p.name,
      dev: p.dev,
      verify,
      sign: (path: string, o: SignOptions = {}) =>
        signInFrame(ctx, path, o, (input) => {
          const plan = timestampPlan(p, releasePath);
          return osslProduce(
            {
              program: p.osslsigncode,
              runner,
              timeoutMs: p.timeoutMs,
              digest: p.digest,
              keys,
              ...(p.productUrl ? { url: p.productUrl } : {}),
              ...(password
                ? { password: parseSecretRef(password, `signing.profiles.${p.name}.password`) }
                : {}),
              ...(plan ? { timestamp: plan } : {}),
            },
            { ...input, description: o.description ?? p.description ?? input.description },
          );
        }),
    };
  }
  return createOtherSigner(p, ctx, { releasePath, runner, verify, overrides: options.overrides ?? {} });
}

function osslKeys(p: Extract<ResolvedProfile, { backend: 'osslsigncode' }>) {
  if (p.pkcs11) {
    return {
      pkcs11: {
        module: p.pkcs11.module,
        cert: p.pkcs11.cert,
        key: p.pkcs11.key,
        ...(p.pkcs11.engine ? { engine: p.pkcs11.engine } : {}),
      },
      ...(p.cert ? { certs: p.cert } : {}),
    };
  }
  if (p.pkcs12) return { pkcs12: p.pkcs12 };
  if (!p.cert || !p.key) {
    throw new SignetError(
      'E_SIGN_KEY_MISSING',
      `profile "${p.name}": osslsigncode needs cert + key, pkcs12, or pkcs11`,
      {
        details: { profile: p.name },
      },
    );
  }
  return { certs: p.cert, key: p.key };
}

interface OtherSignerDeps {
  releasePath: boolean;
  runner: Runner;
  verify: (path: string) => Promise<SignedArtifact>;
  overrides: ProfileOverrides;
}

let otherFactory: ((p: ResolvedProfile, ctx: FrameContext, deps: OtherSignerDeps) => Signer) | undefined;

/** Registered by the jsign/remote module (keeps this file's imports light). */
export function registerBackendFactory(f: typeof otherFactory): void {
  otherFactory = f;
}

function createOtherSigner(p: ResolvedProfile, ctx: FrameContext, deps: OtherSignerDeps): Signer {
  if (!otherFactory) throw new SignetError('E_INTERNAL', `backend ${p.backend} is not available`);
  return otherFactory(p, ctx, deps);
}

export interface FileResult {
  path: string;
  ok: boolean;
  artifact?: SignedArtifact;
  error?: { code: string; message: string; hint: string };
  durationMs: number;
}

export interface SignFilesResult {
  ok: boolean;
  results: FileResult[];
  signed: number;
  failed: number;
}

/**
 * Signs every file with at most `concurrency` in flight (default: the number of cores). A failure
 * does not stop the others; the caller fails the command afterwards from `ok`/`failed`.
 */
export async function signFiles(
  signer: Signer,
  paths: string[],
  options: { concurrency?: number; sign?: SignOptions; onResult?: (r: FileResult) => void } = {},
): Promise<SignFilesResult> {
  const limit = Math.max(1, options.concurrency ?? availableParallelism());
  if (options.sign?.out && paths.length > 1)
    throw new SignetError('E_USAGE', '--out takes a single input file');
  const results: FileResult[] = new Array(paths.length);
  let next = 0;
  const worker = async () => {
    while (next < paths.length) {
      const i = next++;
      const path = paths[i] as string;
      const started = performance.now();
      try {
        const artifact = await signer.sign(path, options.sign ?? {});
        results[i] = { path, ok: true, artifact, durationMs: performance.now() - started };
      } catch (e) {
        const err = toSignetError(e);
        logger.error(`${path}: [${err.code}] ${err.message}`);
        results[i] = {
          path,
          ok: false,
          error: { code: err.code, message: err.message, hint: err.hint },
          durationMs: performance.now() - started,
        };
      }
      options.onResult?.(results[i] as FileResult);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, paths.length) }, worker));
  const failed = results.filter((r) => !r.ok).length;
  return { ok: failed === 0, results, signed: results.length - failed, failed };
}
