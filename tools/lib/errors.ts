/**
 * One table of error codes (the semantic-release shape): every failure Signet reports is a
 * SignetError whose code is a key of ERRORS, with a message, a hint that says the fix, and an
 * exit code class. Messages never contain secrets: callers pass details through the redactor.
 */
import { redact } from './redact.ts';

/** Exit codes, documented in the README. */
export const EXIT = {
  ok: 0,
  /** The operation failed (tool failure, remote failure, nothing written). */
  failed: 1,
  /** Invalid usage, configuration or input; nothing was done. */
  usage: 2,
  /** A security check refused: signature/verify failure, unsigned input, pin mismatch. */
  refused: 3,
  /** The environment is missing something (a tool, a key, a token). */
  environment: 4,
  /** Some items of a batch failed, the others succeeded. */
  partial: 5,
} as const;
export type ExitKind = keyof typeof EXIT;

interface Definition {
  exit: ExitKind;
  hint: string;
}

export const ERRORS = {
  // generic
  E_INTERNAL: { exit: 'failed', hint: 'This is a bug in Signet; please report it with --verbose output.' },
  E_USAGE: { exit: 'usage', hint: 'Run `signet <command> --help` for the accepted options.' },
  E_CONFIG_INVALID: {
    exit: 'usage',
    hint: 'Fix the named fields in signet.config.yaml; `signet schema` prints the JSON Schema that lists every field.',
  },
  E_CONFIG_NOT_FOUND: {
    exit: 'usage',
    hint: 'Pass --config with an existing file, or drop the option to use defaults.',
  },
  E_INPUT_INVALID: { exit: 'usage', hint: 'Fix the named input field and run again.' },
  E_TOOL_MISSING: {
    exit: 'environment',
    hint: 'Run `signet doctor` to see the missing tools and the command that installs them.',
  },
  E_TOOL_FAILED: {
    exit: 'failed',
    hint: 'The external tool failed; its (redacted) output is shown above. Run with --verbose for the command line.',
  },
  E_TOOL_TIMEOUT: {
    exit: 'failed',
    hint: 'The external tool did not finish in time; raise the timeout or check the tool.',
  },
  E_FILE_NOT_FOUND: { exit: 'usage', hint: 'Check the path.' },
  E_FILE_EXISTS: { exit: 'usage', hint: 'Remove the existing file or choose another output path.' },
  E_SECRET_MISSING: {
    exit: 'environment',
    hint: 'Set the named environment variable or file; secrets are never accepted on the command line.',
  },
  E_DIR_NOT_EMPTY: {
    exit: 'usage',
    hint: 'Choose an empty or new folder, or pass --force to replace the folder (everything in it is deleted).',
  },
  // the operating system refused (see fsError below): environment, not a bug
  E_FS_PERMISSION: {
    exit: 'environment',
    hint: 'Permission denied or the file is immutable: give this user write access to the named path (chmod/chown, `chattr -i`), or choose another path.',
  },
  E_FS_READ_ONLY: {
    exit: 'environment',
    hint: 'The named path is on a read-only file system: remount it read-write or choose a path on a writable disk.',
  },
  E_FS_NO_SPACE: {
    exit: 'environment',
    hint: 'The disk (or quota) holding the named path is full: free space there or choose another path, then run again.',
  },
  E_FS_WRONG_TYPE: {
    exit: 'environment',
    hint: 'The named path is not what the command needs (a folder where a file is expected, a file inside a path where a folder is expected, a pipe or device): fix the path.',
  },
  E_FS_FAILED: {
    exit: 'environment',
    hint: 'The operating system refused the file operation on the named path (see the error code); fix the path or the machine and run again.',
  },
  E_SECRET_ON_ARGV: {
    exit: 'usage',
    hint: 'Pass the secret through an environment variable or a file (env:NAME or file:PATH), never literally.',
  },

  // git / version
  E_NOT_A_GIT_REPO: { exit: 'usage', hint: 'Run inside a git repository or pass --cwd <repo>.' },
  E_SHALLOW_CLONE: {
    exit: 'environment',
    hint: 'Fetch the full history and tags: `git fetch --unshallow --tags`, or in GitHub Actions `actions/checkout` with `fetch-depth: 0`.',
  },
  E_DETACHED_HEAD: {
    exit: 'usage',
    hint: 'Check out a branch before a stable `release --push` (planning on a detached HEAD is fine).',
  },
  E_DIRTY_TREE: { exit: 'usage', hint: 'Commit or stash your changes before applying a stable release.' },
  E_TAG_EXISTS: {
    exit: 'usage',
    hint: 'The target tag already exists. Delete it, or re-run with --force (beta only) to move it.',
  },
  E_MANIFEST_MISSING: {
    exit: 'usage',
    hint: 'Create the manifest or fix its path under `version.manifests` in the config.',
  },
  E_MANIFEST_UNPARSABLE: {
    exit: 'usage',
    hint: 'Fix the version field of the manifest: it must be a semver version such as 1.2.3.',
  },
  E_MANIFEST_DISAGREE: { exit: 'usage', hint: 'Make every manifest carry the same version, then run again.' },
  E_VERSION_OVERFLOW: {
    exit: 'usage',
    hint: 'A version number would pass 2^53-1; release under a version whose numbers stay below it.',
  },
  E_PUSH_REJECTED: {
    exit: 'failed',
    hint: 'The remote rejected the push; the local commit and tag were rolled back. Pull, then release again.',
  },
  E_RELEASE_ROLLED_BACK: {
    exit: 'failed',
    hint: 'The release failed part-way and was rolled back; nothing was committed or tagged.',
  },
  E_RELEASE_LOCKED: {
    exit: 'environment',
    hint: 'Another `signet release` holds this repository (the pid is named); wait for it to finish. If no such process runs (another machine shares the checkout), remove the lock: `git update-ref -d refs/signet/release-lock`.',
  },
  E_RELEASE_HEAD_MOVED: {
    exit: 'failed',
    hint: 'HEAD moved while the release ran (another commit, checkout or reset); what this run made was rolled back. Check `git log`, then release again.',
  },

  // signing
  E_SIGN_KEY_MISSING: {
    exit: 'environment',
    hint: 'Point the signing profile at an existing key/certificate (or token) and try again.',
  },
  E_SIGN_KEY_INVALID: {
    exit: 'usage',
    hint: 'Give the key or certificate as a path, as env:NAME holding the path, the PEM text or the base64 of the file (`base64 -w0 codesign.p12`), or as file:PATH of the file itself or of its base64.',
  },
  E_SIGN_BAD_SECRET: {
    exit: 'refused',
    hint: 'The password or PIN was rejected by the key store. Check the secret in the named env var or file.',
  },
  E_SIGN_FAILED: {
    exit: 'failed',
    hint: 'Signing failed; no output was left behind. See the redacted tool output above.',
  },
  E_SIGN_ALREADY_SIGNED: {
    exit: 'usage',
    hint: 'The file is already signed. Pass --replace to re-sign or --nest to add a signature.',
  },
  E_TIMESTAMP_FAILED: {
    exit: 'failed',
    hint: 'Every timestamp authority failed. Check the TSA URLs of the profile, or (dev only) set `timestamp: false`.',
  },
  E_VERIFY_FAILED: { exit: 'refused', hint: 'The signature did not verify; the file must not be published.' },
  E_VERIFY_UNSIGNED: { exit: 'refused', hint: 'The file carries no Authenticode signature; sign it first.' },
  E_VERIFY_PIN_MISMATCH: {
    exit: 'refused',
    hint: 'The signer is not the pinned certificate. Check the profile pins (leafSha256/subject).',
  },
  E_VERIFY_NO_TIMESTAMP: {
    exit: 'refused',
    hint: 'The signature has no valid timestamp; release signatures must be timestamped.',
  },
  E_VERIFY_AMBIGUOUS: {
    exit: 'refused',
    hint: 'The file could carry a second signature beside the one that verified (an orphan or duplicate signature stream, data after the certificate table, a second WIN_CERTIFICATE). Do not publish it; sign the original build again.',
  },
  E_VERIFY_SIGNER_UNBOUND: {
    exit: 'refused',
    hint: 'The certificate Signet read is not the signer osslsigncode verified (issuer and serial differ). Do not publish the file; sign the original build again.',
  },
  E_VERIFY_PIN_REQUIRED: {
    exit: 'usage',
    hint: 'Pin the release signer: set verify.leafSha256 (the SHA-256 of your code-signing certificate, `signet verify FILE --json` prints it) or verify.subject (the whole DN) in the signing profile, or pass --pin-leaf / --subject.',
  },
  E_SIGN_TOKEN_REJECTED: {
    exit: 'refused',
    hint: 'signing token rejected: check the token in the named env var or file and its permissions.',
  },
  E_SIGN_REMOTE_FAILED: { exit: 'failed', hint: 'The remote signing server failed after all retries.' },
  E_SIGN_UNSIGNED_FALLBACK_REFUSED: {
    exit: 'usage',
    hint: '--allow-unsigned-fallback is refused on the release path.',
  },
  E_SIGN_DEV_PROFILE_REFUSED: {
    exit: 'refused',
    hint: 'Dev profiles (throwaway certificates) never sign on the release path; pick a release profile.',
  },
  E_PROFILE_UNKNOWN: {
    exit: 'usage',
    hint: 'Define the profile under `signing.profiles` in the config or pick an existing one.',
  },

  // installers
  E_SITE_INVALID: { exit: 'usage', hint: 'Fix the named site field.' },
  E_AGENT_UNSIGNED: {
    exit: 'refused',
    hint: 'Sign the agent first (`signet sign`), or use --allow-unsigned-agent with the dev profile.',
  },
  E_INSTALLER_BUILD_FAILED: {
    exit: 'failed',
    hint: 'The installer build failed; see the tool output above.',
  },
  E_INSTALLER_CHECK_FAILED: {
    exit: 'refused',
    hint: 'A post-build check failed; the installer was removed.',
  },
  E_TEMPLATE_INVALID: {
    exit: 'usage',
    hint: 'Fix the template; see docs for the variables a template receives.',
  },

  // forge / publish
  E_FORGE_AUTH: {
    exit: 'environment',
    hint: 'The token was rejected; it needs the named scope (GitHub: contents: write; Gitea: write:repository).',
  },
  E_FORGE_NOT_FOUND: {
    exit: 'usage',
    hint: 'Check the repository owner/name and that the token can see it.',
  },
  E_FORGE_TIMEOUT: {
    exit: 'failed',
    hint: 'The forge did not answer in time, retries included; check the server, or raise publish.timeouts (connectMs, idleMs, deadlineMs) in the config. Publishing converges: re-run.',
  },
  E_FORGE_FAILED: {
    exit: 'failed',
    hint: 'The forge kept failing after retries; re-run: publishing converges.',
  },
  E_PUBLISH_GATE: { exit: 'refused', hint: 'The verify gate failed; the release stays a draft.' },
  E_PUBLISH_SITE_INSTALLER: {
    exit: 'refused',
    hint: 'Per-site installers carry their site\'s enrollment key: deliver them only to the vendor’s server (`signet deliver`), never in a release. To publish them anyway (a private release), pass --allow-site-installers (publish action: allow-site-installers: "true").',
  },
  E_RELEASE_IMMUTABLE: {
    exit: 'usage',
    hint: 'The published release is immutable (GitHub immutable releases): its assets cannot change. Publish a new version instead.',
  },
  E_SEAL_FAILED: { exit: 'failed', hint: 'Check the sealing key (base64, 32 bytes).' },
  E_SEAL_SITE_MISMATCH: {
    exit: 'refused',
    hint: "A sealed enrollment key opens only for the site and key version it was sealed for: seal each site's key with its own site code and key version (`signet seal --site-code CODE --key-version N`, or sealEnrollmentKey in a server).",
  },
  E_SEAL_FORMAT: {
    exit: 'usage',
    hint: 'Seal enrollment keys as a site-bound envelope: `signet seal --site-code CODE --key-version N --public-key …` (library: sealEnrollmentKey({siteCode, keyVersion, key}, publicKey)); a bare sealed key is no longer accepted.',
  },

  // delivery to the vendor's server (signet deliver)
  E_DELIVER_URL: {
    exit: 'usage',
    hint: 'Give the callback as https://HOST/PATH (plain http only to a loopback host) without user:pass@; the token travels in the Authorization header, never in the URL.',
  },
  E_DELIVER_AUTH: {
    exit: 'environment',
    hint: 'The callback refused the token (401/403): check the token the server issued for this request (sealed with `signet seal` to the seal public key) and that it has not expired. Nothing was retried.',
  },
  E_DELIVER_FAILED: {
    exit: 'failed',
    hint: 'The callback failed or kept failing after retries; deliver again with the same request id (the server overwrites files by name).',
  },
  // the service (signet serve)
  E_AUTH_MISSING: {
    exit: 'environment',
    hint: 'Send `Authorization: Bearer <token>`; an admin makes tokens with `signet serve token create`.',
  },
  E_AUTH_INVALID: {
    exit: 'environment',
    hint: 'The token is unknown, expired or revoked; ask an admin for a new one (`signet serve token create`).',
  },
  E_AUTH_SCOPE: {
    exit: 'refused',
    hint: 'This token lacks the scope the route needs (named in the message); create a token with it.',
  },
  E_NOT_FOUND: {
    exit: 'usage',
    hint: 'Check the identifier in the path; list the collection to see what exists.',
  },
  E_CONFLICT: {
    exit: 'usage',
    hint: 'The request conflicts with the current state (see the message); read the resource and retry with what it expects.',
  },
  E_KEY_VERSION: {
    exit: 'usage',
    hint: 'A new enrollment key must come with keyVersion + 1 (rotation); the same keyVersion must come with the same key. Older versions are refused.',
  },
  E_TOO_LARGE: {
    exit: 'usage',
    hint: 'The body is over the limit (service.maxUploadBytes for files, 1 MiB for JSON).',
  },
  E_UNSUPPORTED_MEDIA: {
    exit: 'usage',
    hint: 'Send JSON as application/json and files as application/octet-stream.',
  },
  E_RATE_LIMITED: {
    exit: 'environment',
    hint: 'Too many requests for this token; wait for Retry-After seconds.',
  },
  E_NO_RELEASE: {
    exit: 'usage',
    hint: 'No verified agent release for that channel or version yet: upload one with POST /v1/releases.',
  },
  E_LINK_INVALID: {
    exit: 'refused',
    hint: 'The download link expired, was revoked, or the site key rotated since it was made; ask for a new link.',
  },
  E_LINK_EXPIRED: { exit: 'refused', hint: 'The download link expired; ask for a new link.' },
  E_RANGE_UNSATISFIABLE: {
    exit: 'usage',
    hint: 'Ask for a byte range inside the file (its size is in Content-Range: bytes */SIZE).',
  },
  E_SERVICE_KEY_UNREADABLE: {
    exit: 'environment',
    hint: 'A stored enrollment key does not open with this service.masterKey; restore the original key, or PUT the site again with its key.',
  },
  E_SIGN_UNSUPPORTED: {
    exit: 'usage',
    hint: 'Only PE files (.exe, .dll) and MSI packages are Authenticode-signed; send one of those.',
  },
  E_SERVICE_CLOSING: {
    exit: 'environment',
    hint: 'The service is shutting down; retry against the next instance.',
  },
  E_SERVICE_UNSAFE_LISTEN: {
    exit: 'usage',
    hint: 'Plain HTTP is served only on a loopback address: give service.tls (cert and key), listen on 127.0.0.1, or pass --behind-proxy when a TLS proxy is in front.',
  },
  E_PARTIAL: { exit: 'partial', hint: 'Some items failed; see the per-item results.' },
} as const satisfies Record<string, Definition>;

export type ErrorCode = keyof typeof ERRORS;

export interface SignetErrorOptions {
  hint?: string;
  details?: Record<string, unknown>;
  cause?: unknown;
}

export class SignetError extends Error {
  readonly code: ErrorCode;
  readonly hint: string;
  readonly details: Record<string, unknown>;
  readonly exitCode: number;

  constructor(code: ErrorCode, message: string, options: SignetErrorOptions = {}) {
    super(redact(message), options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SignetError';
    this.code = code;
    this.hint = redact(options.hint ?? ERRORS[code].hint);
    this.details = JSON.parse(redact(JSON.stringify(options.details ?? {}))) as Record<string, unknown>;
    this.exitCode = EXIT[ERRORS[code].exit];
  }

  toJSON(): { code: ErrorCode; message: string; hint: string; details: Record<string, unknown> } {
    return { code: this.code, message: this.message, hint: this.hint, details: this.details };
  }
}

export function isSignetError(e: unknown): e is SignetError {
  return e instanceof SignetError;
}

/** Operating-system file errors (errno codes) and what they mean for the user. */
const FS_ERRORS: Record<string, { code: ErrorCode; what: string }> = {
  EACCES: { code: 'E_FS_PERMISSION', what: 'permission denied' },
  EPERM: { code: 'E_FS_PERMISSION', what: 'operation not permitted (immutable or protected file)' },
  EROFS: { code: 'E_FS_READ_ONLY', what: 'read-only file system' },
  ENOSPC: { code: 'E_FS_NO_SPACE', what: 'no space left on the device' },
  EDQUOT: { code: 'E_FS_NO_SPACE', what: 'disk quota exceeded' },
  EFBIG: { code: 'E_FS_NO_SPACE', what: 'file too large for the file system' },
  EISDIR: { code: 'E_FS_WRONG_TYPE', what: 'is a directory, not a file' },
  ENOTDIR: { code: 'E_FS_WRONG_TYPE', what: 'a part of the path is a file, not a directory' },
  EEXIST: { code: 'E_FILE_EXISTS', what: 'already exists' },
  ENOENT: { code: 'E_FILE_NOT_FOUND', what: 'no such file or directory' },
  ENOTEMPTY: { code: 'E_FS_FAILED', what: 'directory not empty' },
  EBUSY: { code: 'E_FS_FAILED', what: 'resource busy' },
  ETXTBSY: { code: 'E_FS_FAILED', what: 'file busy (a running program)' },
  EMFILE: { code: 'E_FS_FAILED', what: 'too many open files' },
  ENFILE: { code: 'E_FS_FAILED', what: 'too many open files in the system' },
  ELOOP: { code: 'E_FS_FAILED', what: 'too many symbolic links' },
  ENAMETOOLONG: { code: 'E_FS_FAILED', what: 'file name too long' },
  EXDEV: { code: 'E_FS_FAILED', what: 'cross-device link' },
  EIO: { code: 'E_FS_FAILED', what: 'input/output error' },
};

/**
 * A Node file-system error (it has an errno `code` and a `syscall`) as the coded environment
 * error a user can act on: the message and hint name the path. Undefined for anything else.
 */
export function fsError(e: unknown): SignetError | undefined {
  const err = e as { code?: unknown; syscall?: unknown; path?: unknown; dest?: unknown } | null;
  if (!err || typeof err !== 'object' || typeof err.code !== 'string' || typeof err.syscall !== 'string')
    return undefined;
  // mkdir -p over a file answers EEXIST: a file where a folder is expected
  const known =
    err.code === 'EEXIST' && err.syscall === 'mkdir'
      ? { code: 'E_FS_WRONG_TYPE' as const, what: 'exists and is not a folder' }
      : FS_ERRORS[err.code];
  if (!known || err.syscall.startsWith('spawn') || err.syscall === 'connect') return undefined;
  const path = typeof err.path === 'string' ? err.path : undefined;
  const where = path ?? 'a file';
  const message = `${where}: ${known.what} (${err.code}, ${err.syscall}${typeof err.dest === 'string' ? ` → ${err.dest}` : ''})`;
  const base: string = ERRORS[known.code].hint;
  const hint = path ? base.replace(/the named path/i, path) : base;
  return new SignetError(known.code, message, {
    hint: hint === base && path ? `${path}: ${base}` : hint,
    details: { ...(path ? { path } : {}), errno: err.code, syscall: err.syscall },
    cause: e,
  });
}

/** Wraps anything thrown into a SignetError: an OS file error becomes its coded environment error, the rest E_INTERNAL. */
export function toSignetError(e: unknown): SignetError {
  if (isSignetError(e)) return e;
  const fs = fsError(e);
  if (fs) return fs;
  const message = e instanceof Error ? e.message : String(e);
  return new SignetError('E_INTERNAL', message, { cause: e });
}
