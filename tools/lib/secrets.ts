/**
 * Secret references. A secret is given as `env:NAME` or `file:PATH`, never literally: a literal
 * on a command line would be visible in the process list and shell history. Resolving a secret
 * registers it with the redactor before the value is returned.
 */
import { readFileSync } from 'node:fs';
import { SignetError } from './errors.ts';
import { registerSecret } from './redact.ts';

export type SecretRef = `env:${string}` | `file:${string}`;

export function isSecretRef(value: string): value is SecretRef {
  return /^env:[A-Za-z_][A-Za-z0-9_]*$/.test(value) || /^file:.+/.test(value);
}

/** Validates a reference without resolving it (config and flags are checked before any work). */
export function parseSecretRef(value: string, field: string): SecretRef {
  if (!isSecretRef(value)) {
    throw new SignetError(
      'E_SECRET_ON_ARGV',
      `${field}: expected env:NAME or file:PATH, got a literal value`,
      {
        details: { field },
      },
    );
  }
  return value;
}

export function resolveSecret(ref: SecretRef, field: string, env: NodeJS.ProcessEnv = process.env): string {
  let value: string | undefined;
  if (ref.startsWith('env:')) {
    const name = ref.slice(4);
    value = env[name];
    if (value === undefined || value === '') {
      throw new SignetError('E_SECRET_MISSING', `${field}: environment variable ${name} is not set`, {
        details: { field, env: name },
      });
    }
  } else {
    const path = ref.slice(5);
    try {
      value = readFileSync(path, 'utf8').replace(/\r?\n$/, '');
    } catch {
      throw new SignetError('E_SECRET_MISSING', `${field}: cannot read secret file ${path}`, {
        details: { field, path },
      });
    }
    if (value === '')
      throw new SignetError('E_SECRET_MISSING', `${field}: secret file ${path} is empty`, {
        details: { field },
      });
  }
  registerSecret(value);
  return value;
}
