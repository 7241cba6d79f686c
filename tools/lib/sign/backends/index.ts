/**
 * The signing backends, by the `backend:` value of a profile. Adding one (a cloud KMS, say) is one
 * object implementing SigningBackend, registered here or with registerBackend; sign/index.ts,
 * doctor and `signet check` ask the registry and never name a backend.
 */
import { SignetError } from '../../errors.ts';
import { jsignBackend } from './jsign.ts';
import { osslsigncodeBackend } from './osslsigncode.ts';
import { remoteBackend } from './remote.ts';
import type { BaseProfile, SigningBackend } from './types.ts';

export type {
  BackendContext,
  BackendSigner,
  BaseProfile,
  DoctorFile,
  ProfileFile,
  ProfileOf,
  SigningBackend,
} from './types.ts';

// biome-ignore lint/suspicious/noExplicitAny: each backend narrows its own profile type
type AnyBackend = SigningBackend<any>;

const registry = new Map<string, AnyBackend>(
  [osslsigncodeBackend, jsignBackend, remoteBackend].map((b) => [b.name, b as AnyBackend]),
);

/** The built-in backends. */
export const builtinBackends = {
  osslsigncode: osslsigncodeBackend,
  jsign: jsignBackend,
  remote: remoteBackend,
};

/** Registers (or replaces) a backend; returns a function that restores the previous state. */
export function registerBackend<P extends BaseProfile>(backend: SigningBackend<P>): () => void {
  const before = registry.get(backend.name);
  registry.set(backend.name, backend as AnyBackend);
  return () => {
    if (before) registry.set(backend.name, before);
    else registry.delete(backend.name);
  };
}

export function backendNames(): string[] {
  return [...registry.keys()];
}

/** The backend of a profile; an unknown `backend:` is E_CONFIG_INVALID. */
export function backendOf(profile: { backend: string }, name = '?'): SigningBackend<BaseProfile> {
  const b = registry.get(profile.backend);
  if (!b)
    throw new SignetError(
      'E_CONFIG_INVALID',
      `signing.profiles.${name}.backend: unknown backend "${profile.backend}" (known: ${backendNames().join(', ')})`,
      { details: { field: `signing.profiles.${name}.backend` } },
    );
  return b;
}
