/**
 * What every backend shares around "make a signed copy": input checks, the already-signed rule
 * (--replace / --nest), a private work directory next to the target, verify of what was produced,
 * and an atomic rename into place only after verify passed. On any failure nothing signed-looking
 * is left: the work directory is removed and the target is untouched.
 */
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmdirSync,
  statSync,
} from 'node:fs';
import { basename, dirname, extname, join, resolve } from 'node:path';
import { brandSigned, type SignedArtifact } from '../artifact.ts';
import { SignetError } from '../errors.ts';
import type { Runner } from '../exec/runner.ts';
import type { KnownPrefix } from '../exec/spawn-helper.ts';
import { logger } from '../log.ts';
import { registerCleanup, releaseCleanupAsync } from './cleanup.ts';
import { peKnownPrefix } from './pe-image.ts';
import { osslsigncodeEnv } from './tool-env.ts';
import type { SignOptions } from './types.ts';
import { isSigned, type VerifyOptions, type VerifyPolicy, verifyPrivateFile } from './verify.ts';

export interface FrameContext {
  profile: string;
  dev: boolean;
  verify: VerifyOptions;
  policy: VerifyPolicy;
  osslsigncode: string;
  runner: Runner;
}

export interface ProduceInput {
  /** The file to sign (already stripped of its signature for --replace). */
  input: string;
  /** Where the backend must write the signed file (does not exist yet). */
  output: string;
  /** Work directory private to this run. */
  work: string;
  /** The input was signed and --nest was asked. */
  nest: boolean;
  /** The input was signed and --replace was asked (the signature was removed already). */
  replaced: boolean;
  description: string;
  /** Size of the input in bytes (for time limits). */
  size: number;
  /** A file the input starts with (SignOptions.prefix), when the input is the caller's file. */
  prefix?: string;
  /** The MSI the input is a copy of (SignOptions.msiBase), when the input is the caller's file. */
  msiBase?: { path: string; unchanged: readonly string[] };
  /** The input may be turned into the output (SignOptions.consume, or the frame's own copy). */
  consume?: boolean;
}

export type Produce = (p: ProduceInput) => Promise<void>;

export async function removeSignature(
  ctx: Pick<FrameContext, 'osslsigncode' | 'runner'>,
  input: string,
  output: string,
): Promise<void> {
  await ctx.runner.run(ctx.osslsigncode, ['remove-signature', '-in', input, '-out', output], {
    outputs: [output],
    timeoutMs: 300_000,
    label: 'osslsigncode remove-signature',
    env: osslsigncodeEnv(),
  });
}

/**
 * The Authenticode content digest of a file (`osslsigncode extract-data`: the SpcIndirectData
 * blob, signature excluded). Equal for an unsigned file and any signed copy of the same content.
 */
async function contentDigest(ctx: FrameContext, file: string, out: string): Promise<Buffer> {
  await ctx.runner.run(ctx.osslsigncode, ['extract-data', '-h', 'sha256', '-in', file, '-out', out], {
    outputs: [out],
    timeoutMs: 300_000,
    label: 'osslsigncode extract-data',
    env: osslsigncodeEnv(),
  });
  return readFileSync(out);
}

export interface FrameOptions {
  /**
   * The backend is not trusted to return our content (a remote server): besides verifying the
   * signature, check that the signed content is exactly what was sent — a validly signed but
   * different binary is rejected.
   */
  checkContent?: boolean;
}

export async function signInFrame(
  ctx: FrameContext,
  path: string,
  options: SignOptions,
  produce: Produce,
  frame: FrameOptions = {},
): Promise<SignedArtifact> {
  const source = resolve(path);
  if (!existsSync(source) || !statSync(source).isFile()) {
    throw new SignetError('E_FILE_NOT_FOUND', `no such file: ${path}`, { details: { path } });
  }
  const target = resolve(options.out ?? source);
  if (options.out && target !== source && existsSync(target)) {
    throw new SignetError('E_FILE_EXISTS', `output exists: ${options.out}`, {
      details: { path: options.out },
    });
  }
  if (options.replace && options.nest) {
    throw new SignetError('E_USAGE', '--replace and --nest exclude each other');
  }
  const signed = await isSigned(source, { osslsigncode: ctx.osslsigncode, runner: ctx.runner });
  const mode = statSync(source).mode & 0o7777; // before a consuming backend moves the input
  if (signed && !options.replace && !options.nest) {
    throw new SignetError('E_SIGN_ALREADY_SIGNED', `${basename(source)} is already signed`, {
      details: { path: source },
    });
  }
  // Folders of --out made here are removed again when signing fails: nothing is left behind.
  const created = mkdirSync(dirname(target), { recursive: true });
  let signedOk = false;
  // made and registered in one step: a signal in between would leave the folder behind
  const work = mkdtempSync(join(dirname(target), `.signet-sign-${basename(target).slice(0, 40)}-`));
  registerCleanup(work);
  const ext = extname(target);
  try {
    let input = source;
    if (signed && options.replace) {
      input = join(work, `unsigned${ext}`);
      await removeSignature(ctx, source, input);
    }
    const output = join(work, `signed${ext}`);
    await produce({
      input,
      output,
      work,
      nest: signed && Boolean(options.nest),
      replaced: signed && Boolean(options.replace),
      description: options.description ?? basename(target),
      size: statSync(input).size,
      ...(options.prefix && input === source ? { prefix: resolve(options.prefix) } : {}),
      ...(options.msiBase && input === source
        ? { msiBase: { path: resolve(options.msiBase.path), unchanged: options.msiBase.unchanged } }
        : {}),
      ...(options.consume || input !== source ? { consume: true } : {}),
    });
    if (!existsSync(output)) {
      throw new SignetError('E_SIGN_FAILED', `${basename(target)}: the backend wrote no output`);
    }
    // `work` is this call's own 0700 folder and `output` is what gets renamed into place: a
    // snapshot would verify a copy of the bytes that ship, so none is taken.
    const verified = await verifyPrivateFile(
      output,
      {
        ...ctx.verify,
        osslsigncode: ctx.osslsigncode,
        runner: ctx.runner,
        ...knownPrefixOf(options),
      },
      {
        ...ctx.policy,
        profile: ctx.profile,
        dev: ctx.dev,
      },
    );
    if (frame.checkContent) {
      const [sent, got] = await Promise.all([
        contentDigest(ctx, input, join(work, 'sent.der')),
        contentDigest(ctx, output, join(work, 'got.der')),
      ]);
      if (!sent.equals(got)) {
        throw new SignetError(
          'E_VERIFY_FAILED',
          `${basename(target)}: the signed file's content differs from what was sent (validly signed, but not our binary)`,
        );
      }
    }
    if (options.nest && verified.signature.signatures < 2) {
      throw new SignetError(
        'E_VERIFY_FAILED',
        `${basename(target)}: the nested signature is missing after signing`,
      );
    }
    chmodSync(output, mode); // keep the input's mode (e.g. 0755)
    renameSync(output, target);
    signedOk = true;
    logger.debug(`signed ${target} (${verified.signature.leafSha256.slice(0, 16)}…)`);
    return brandSigned(
      {
        path: target,
        kind: verified.kind,
        sha256: verified.sha256,
        size: verified.size,
        ...(verified.sharedPrefix ? { sharedPrefix: verified.sharedPrefix } : {}),
      },
      verified.signature,
    );
  } finally {
    await releaseCleanupAsync(work);
    if (!signedOk && created) removeCreated(dirname(target), created);
  }
}

/**
 * What the signed file is expected to start with, for its file hash: the base MSI's shared prefix,
 * or the PE the input starts with (its signing fields excepted). Compared when hashed, never assumed.
 */
function knownPrefixOf(options: SignOptions): { knownPrefix?: KnownPrefix } {
  if (options.msiBase?.prefix)
    return { knownPrefix: { path: resolve(options.msiBase.path), length: options.msiBase.prefix } };
  if (!options.prefix) return {};
  try {
    const known = peKnownPrefix(resolve(options.prefix));
    return known ? { knownPrefix: known } : {};
  } catch {
    return {}; // no such file: hashed as it is
  }
}

/** Removes the (now empty) folders from `dir` up to `top`, which mkdirSync created. */
function removeCreated(dir: string, top: string): void {
  for (let d = dir; ; d = dirname(d)) {
    try {
      rmdirSync(d);
    } catch {
      return;
    }
    if (d === top || dirname(d) === d) return;
  }
}
