/**
 * The signing layer's entry points: `createSigner(config, {profile, overrides, releasePath})`
 * picks a named profile (flags and env override it), `signFiles` signs many files with bounded
 * concurrency, `verifyFile` / `inspectSignature` verify. Fail closed everywhere.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename, isAbsolute, join, resolve } from 'node:path';
import pLimit from 'p-limit';
import { type Artifact, describeArtifact, type SignedArtifact } from '../artifact.ts';
import type { SignetConfig } from '../config/schema.ts';
import { SignetError, toSignetError } from '../errors.ts';
import { defaultRunner, type Runner } from '../exec/runner.ts';
import { logger } from '../log.ts';
import { backendOf } from './backends/index.ts';
import { hasUserinfo, type SigningProfile, TSA_USERINFO_MESSAGE } from './config.ts';
import { type FrameContext, signInFrame } from './frame.ts';
import type { TimestampPlan } from './osslsigncode.ts';
import type { Signer, SignOptions } from './types.ts';
import { isSigned, type VerifyOptions, verifyFile } from './verify.ts';

export type { SignedArtifact } from '../artifact.ts';
export {
  type BackendContext,
  type BackendSigner,
  backendOf,
  builtinBackends,
  registerBackend,
  type SigningBackend,
} from './backends/index.ts';
export type { SigningProfile } from './config.ts';
export { type DevCert, makeDevCert } from './devcert.ts';
export { type LocalTsa, startLocalTsa } from './local-tsa.ts';
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
  const backend = backendOf(raw, name);
  const p = backend.parse(structuredClone(raw)) as SigningProfile;
  const withCredentials = (tsaUrls ?? []).filter(hasUserinfo);
  if (withCredentials.length)
    throw new SignetError(
      'E_SECRET_ON_ARGV',
      `${o.tsaUrls ? '--tsa-url' : 'SIGNET_TSA_URLS'}: ${TSA_USERINFO_MESSAGE}: ${withCredentials.join(', ')}`,
      {
        details: { field: o.tsaUrls ? '--tsa-url' : 'SIGNET_TSA_URLS' },
        hint: 'Give the TSA URL without user:password@; Signet never puts a credential on a command line or in a message.',
      },
    );
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
  if (o.leafSha256?.length) {
    const bad = o.leafSha256.filter((h) => !/^[0-9a-fA-F]{64}$/.test(h));
    if (bad.length)
      throw new SignetError('E_USAGE', `--pin-leaf expects SHA-256 hex (64 digits), got: ${bad.join(', ')}`);
    verify.leafSha256 = o.leafSha256.map((h) => h.toLowerCase());
  }
  if (o.subject) verify.subject = o.subject;
  const caFile = abs(base, verify.caFile);
  const tsaCaFile = abs(base, verify.tsaCaFile);
  p.verify = {
    leafSha256: verify.leafSha256,
    ...(caFile ? { caFile } : {}),
    ...(tsaCaFile ? { tsaCaFile } : {}),
    ...(verify.subject ? { subject: verify.subject } : {}),
  };
  const resolved = { ...p, name } as ResolvedProfile;
  backend.resolvePaths(resolved, base);
  return resolved;
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
  const program = backendOf(p, p.name).osslsigncode?.(p);
  if (program) v.osslsigncode = program;
  if (runner) v.runner = runner;
  return v;
}

/**
 * The release path trusts a signer only by name: a leaf pin or the exact subject. A chain to a CA
 * alone is not enough (any certificate the store trusts would pass).
 */
export function requireSignerPin(
  v: Pick<VerifyOptions, 'leafSha256' | 'subject'>,
  what: string,
  fix: string,
): void {
  if (v.leafSha256?.length || v.subject) return;
  throw new SignetError('E_VERIFY_PIN_REQUIRED', `${what} pins no signer; the release path needs ${fix}`);
}

export function createSigner(config: SignetConfig, options: CreateSignerOptions = {}): Signer {
  const p = resolveProfile(config, options);
  const releasePath = Boolean(options.releasePath);
  const runner = options.runner ?? defaultRunner;
  if (releasePath && p.dev) {
    throw new SignetError(
      'E_SIGN_DEV_PROFILE_REFUSED',
      `profile "${p.name}" is a dev profile and cannot sign on the release path`,
    );
  }
  if (releasePath)
    requireSignerPin(
      verifyOptionsOf(p),
      `profile "${p.name}"`,
      `signing.profiles.${p.name}.verify.leafSha256 or signing.profiles.${p.name}.verify.subject`,
    );
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
  const backend = backendOf(p, p.name);
  if (options.overrides?.allowUnsignedFallback && !backend.unsignedFallback) {
    throw new SignetError(
      'E_USAGE',
      `--allow-unsigned-fallback applies to the remote backend only (profile "${p.name}" uses ${p.backend})`,
    );
  }
  const requireTimestamp = releasePath && p.timestamp !== false;
  const ctx: FrameContext = {
    profile: p.name,
    dev: p.dev,
    verify: verifyOptionsOf(p, runner),
    policy: { requireTimestamp },
    osslsigncode: backend.osslsigncode?.(p) ?? 'osslsigncode',
    runner,
  };
  const parts = backend.create(p, {
    frame: ctx,
    runner,
    env: options.env ?? process.env,
    timestamp: () => timestampPlan(p, releasePath),
  });
  return {
    profile: p.name,
    dev: p.dev,
    verify: (path: string): Promise<SignedArtifact> =>
      verifyFile(path, ctx.verify, { profile: p.name, requireTimestamp, dev: p.dev }),
    ...(backend.unsignedFallback
      ? { allowUnsignedFallback: Boolean(options.overrides?.allowUnsignedFallback) }
      : {}),
    prepare: () => parts.prepare(),
    sign: async (path: string, o: SignOptions = {}) => {
      parts.prepare();
      return signInFrame(
        ctx,
        path,
        o,
        (input) =>
          parts.produce({ ...input, description: o.description ?? p.description ?? input.description }),
        parts.frame,
      );
    },
  };
}

/** Failures after which a remote signer with --allow-unsigned-fallback keeps the unsigned original. */
const FALLBACK_CODES = new Set([
  'E_SIGN_REMOTE_FAILED',
  'E_SIGN_TOKEN_REJECTED',
  'E_TOOL_TIMEOUT',
  'E_VERIFY_FAILED',
  'E_VERIFY_UNSIGNED',
  'E_VERIFY_PIN_MISMATCH',
  'E_VERIFY_NO_TIMESTAMP',
]);

export interface FileResult {
  path: string;
  /** The file is in its intended state: signed, or (fallback) explicitly left unsigned. */
  ok: boolean;
  /** False when the file was left unsigned (never true without a verified signature). */
  signed: boolean;
  /** Set when --allow-unsigned-fallback kept the unsigned original after a failure. */
  fallback?: { code: string; message: string };
  /** Already signed and verified under this profile (--skip-signed): left untouched. */
  skipped?: boolean;
  artifact?: SignedArtifact;
  /** The unsigned file (fallback only). */
  unsigned?: Artifact;
  error?: { code: string; message: string; hint: string };
  durationMs: number;
}

export interface SignFilesResult {
  ok: boolean;
  results: FileResult[];
  signed: number;
  failed: number;
  /** Left unsigned by --allow-unsigned-fallback. */
  unsigned: number;
}

/**
 * Signs every file with at most `concurrency` in flight (default: the number of cores). A failure
 * does not stop the others; the caller fails the command afterwards from `ok`/`failed`.
 */
export async function signFiles(
  signer: Signer,
  paths: string[],
  options: {
    concurrency?: number;
    sign?: SignOptions;
    /** Write each signed file into this directory (same base name) instead of signing in place. */
    outDir?: string;
    /**
     * Converge: a file that is already signed and passes this profile's verify (chain, pins,
     * timestamp policy) is accepted as is (`skipped: true`) instead of being refused. Not with
     * --replace/--nest/--out-dir.
     */
    skipSigned?: boolean;
    onResult?: (r: FileResult) => void;
  } = {},
): Promise<SignFilesResult> {
  const limit = Math.max(1, options.concurrency ?? availableParallelism());
  if (options.sign?.out && paths.length > 1)
    throw new SignetError('E_USAGE', '--out takes a single input file');
  if (
    options.skipSigned &&
    (options.sign?.replace || options.sign?.nest || options.outDir || options.sign?.out)
  ) {
    throw new SignetError(
      'E_USAGE',
      '--skip-signed cannot be combined with --replace, --nest, --out or --out-dir',
    );
  }
  if (options.outDir) {
    const names = paths.map((p) => basename(p));
    const dup = names.find((n, i) => names.indexOf(n) !== i);
    if (dup) throw new SignetError('E_USAGE', `--out-dir: two inputs are named ${dup}`);
    mkdirSync(options.outDir, { recursive: true });
  }
  // key material that cannot be resolved fails the batch once, before any file is touched
  signer.prepare?.();
  const signOne = async (path: string): Promise<FileResult> => {
    const started = performance.now();
    try {
      if (options.skipSigned && (await isSigned(path))) {
        const artifact = await signer.verify(path);
        return {
          path,
          ok: true,
          signed: true,
          skipped: true,
          artifact,
          durationMs: performance.now() - started,
        };
      }
      const artifact = await signer.sign(path, {
        ...(options.sign ?? {}),
        ...(options.outDir ? { out: join(options.outDir, basename(path)) } : {}),
      });
      return { path, ok: true, signed: true, artifact, durationMs: performance.now() - started };
    } catch (e) {
      const err = toSignetError(e);
      if (signer.allowUnsignedFallback && FALLBACK_CODES.has(err.code) && existsSync(path)) {
        logger.warn(
          `!!! ${path} was NOT SIGNED: ${err.message}\n!!! --allow-unsigned-fallback kept the unsigned file (signed: false). Never publish it.`,
        );
        return {
          path,
          ok: true,
          signed: false,
          fallback: { code: err.code, message: err.message },
          unsigned: await describeArtifact(path),
          durationMs: performance.now() - started,
        };
      }
      logger.error(`${path}: [${err.code}] ${err.message}`);
      return {
        path,
        ok: false,
        signed: false,
        error: { code: err.code, message: err.message, hint: err.hint },
        durationMs: performance.now() - started,
      };
    }
  };
  const results = await pLimit(limit).map(paths, async (path) => {
    const r = await signOne(path);
    options.onResult?.(r);
    return r;
  });
  const failed = results.filter((r) => !r.ok).length;
  const unsigned = results.filter((r) => r.ok && !r.signed).length;
  return { ok: failed === 0, results, signed: results.length - failed - unsigned, failed, unsigned };
}
