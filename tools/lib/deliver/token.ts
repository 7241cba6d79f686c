/**
 * The callback token: an `env:NAME` / `file:PATH` reference, a value an action already masked, or
 * a libsodium sealed box (base64, or `file:PATH` of it) made with `signet seal` to the repository's
 * seal public key and opened with the seal private key — the way sealed enrollment keys arrive in
 * a dispatch. Every form is registered with the redactor before it is returned.
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { SignetError } from '../errors.ts';
import { registerSecret } from '../redact.ts';
import { isEnrollmentEnvelope } from '../seal/enrollment.ts';
import { unseal } from '../seal/index.ts';
import { parseSecretRef, resolveSecret } from '../secrets.ts';

export type TokenSource =
  | { kind: 'ref'; ref: string }
  | { kind: 'value'; value: string }
  | { kind: 'sealed'; sealed: string; privateKey: string | undefined };

const TOKEN = /^[\x21-\x7e]{8,4096}$/;

/** A sealed value given inline (base64) or as `file:PATH` (relative to cwd). */
function sealedText(sealed: string, cwd: string): string {
  if (!sealed.startsWith('file:')) return sealed;
  const path = resolve(cwd, sealed.slice(5));
  try {
    return readFileSync(path, 'utf8');
  } catch {
    throw new SignetError('E_FILE_NOT_FOUND', `cannot read the sealed token file ${path}`);
  }
}

export async function resolveToken(
  source: TokenSource,
  env: NodeJS.ProcessEnv = process.env,
  cwd = process.cwd(),
): Promise<string> {
  let token: string;
  if (source.kind === 'ref') token = resolveSecret(parseSecretRef(source.ref, '--token'), '--token', env);
  else if (source.kind === 'value') token = source.value;
  else {
    const sealed = sealedText(source.sealed, cwd);
    if (!sealed.trim())
      throw new SignetError('E_INPUT_INVALID', 'no callback token: give the sealed token (or the token)');
    if (!source.privateKey)
      throw new SignetError(
        'E_SECRET_MISSING',
        'a sealed token needs the seal private key (secret SIGNET_SEAL_PRIVATE_KEY)',
        {
          hint: 'Pass the repository secret SIGNET_SEAL_PRIVATE_KEY (action input seal-private-key, or the environment variable for the CLI).',
        },
      );
    registerSecret(source.privateKey.trim());
    token = await unseal(sealed, source.privateKey);
    // a sealed enrollment key is no bearer token: sending it would hand a site's key to the callback
    if (isEnrollmentEnvelope(token.trim()))
      throw new SignetError(
        'E_SEAL_FORMAT',
        'the sealed callback token is a sealed enrollment key; refusing to send it to the callback',
        { hint: 'Seal the callback token itself (`signet seal` without --site-code).' },
      );
  }
  token = token.trim();
  registerSecret(token);
  if (!TOKEN.test(token))
    throw new SignetError(
      'E_INPUT_INVALID',
      'the callback token must be 8–4096 printable characters without spaces',
      { hint: 'Issue a longer token for the request (it travels as `Authorization: Bearer <token>`).' },
    );
  return token;
}

/** An action's token inputs as a source: the (masked) token itself, else the sealed one. */
export function tokenFromInputs(
  token: string | undefined,
  sealed: string | undefined,
  privateKey: string | undefined,
): TokenSource {
  return token ? { kind: 'value', value: token } : { kind: 'sealed', sealed: sealed ?? '', privateKey };
}
