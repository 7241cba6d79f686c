/**
 * What varies per signing backend, behind one interface: its profile's validation and paths, its
 * key material, the step that writes a signed copy, whether it timestamps itself, what doctor and
 * `signet check` look for. Everything else (profile choice, overrides, the release-path rules,
 * the frame with verify and atomic rename, batches) is shared in sign/index.ts.
 */
import type { ErrorCode } from '../../errors.ts';
import type { Runner } from '../../exec/runner.ts';
import type { SigningProfile } from '../config.ts';
import type { FrameContext, FrameOptions, ProduceInput } from '../frame.ts';
import type { MaterialKind } from '../key-material.ts';
import type { TimestampPlan } from '../osslsigncode.ts';

/** The fields every profile has (see `common` in sign/config.ts), after overrides, with its name. */
export interface BaseProfile {
  backend: string;
  name: string;
  dev: boolean;
  digest: SigningProfile['digest'];
  timestamp: SigningProfile['timestamp'];
  verify: SigningProfile['verify'];
  description?: string | undefined;
  productUrl?: string | undefined;
  timeoutMs: number;
}

/** A built-in backend's resolved profile. */
export type ProfileOf<N extends SigningProfile['backend']> = Extract<SigningProfile, { backend: N }> & {
  name: string;
};

export interface BackendContext {
  frame: FrameContext;
  runner: Runner;
  env: NodeJS.ProcessEnv;
  /**
   * The timestamp plan of the profile for one signing run (undefined: no timestamp); throws on
   * the release path when no TSA is configured. Backends whose server stamps never call it.
   */
  timestamp(): TimestampPlan | undefined;
}

/** One profile's signing parts, made once per signer. */
export interface BackendSigner {
  /** Resolves key material (env:/file: references) once; throws the coded error a sign would. */
  prepare(): void;
  /** Writes the signed copy of `input.input` to `input.output` (description already chosen). */
  produce(input: ProduceInput): Promise<void>;
  /** Extra frame checks, e.g. that a server returned our content. */
  frame?: FrameOptions;
}

/** A file a profile reads: checked to exist by `signet check` (references are left to prepare). */
export interface ProfileFile {
  field: string;
  value: string;
  /** E_SIGN_KEY_MISSING for key material, E_TOOL_MISSING for a program or module. */
  code: ErrorCode;
  /** Key material: its content is part of the signer's identity (installer cache keys). */
  material?: MaterialKind;
}

/** A check doctor adds for one profile: a file that must exist. */
export interface DoctorFile {
  name: string;
  purpose: string;
  path: string;
  install?: string;
}

export interface SigningBackend<P extends BaseProfile = BaseProfile> {
  /** The `backend:` value of its profiles. */
  readonly name: string;
  /** Validates a raw profile of this backend and fills its defaults (throws a ZodError). */
  parse(raw: unknown): Omit<P, 'name'>;
  /** Makes the profile's relative paths absolute against `base` (the config's folder); mutates. */
  resolvePaths(p: P, base: string): void;
  /** The osslsigncode program verify uses for this profile (default "osslsigncode"). */
  osslsigncode?(p: P): string;
  /** `--allow-unsigned-fallback` applies: the key is elsewhere (a server that may be down). */
  readonly unsignedFallback?: boolean;
  /** Checks the profile (required fields, references) and makes its signer parts. Called once. */
  create(p: P, ctx: BackendContext): BackendSigner;
  /** The files the profile reads (absolute after resolvePaths, or env:/file:/pkcs11: references). */
  files(p: P): ProfileFile[];
  /** The secret references of the profile, by field. */
  secrets(p: P): [field: string, ref: string | undefined][];
  /** What doctor requires for this profile: names of its known checks, and files. */
  doctor?(p: P): { requires?: string[]; files?: DoctorFile[] };
}
