/** API tokens: created once (shown once), stored as SHA-256, scoped, expiring, revocable. */
import { SignetError } from '../../errors.ts';
import { newId, newToken, tokenHash } from '../../service-store/secrets.ts';
import { SCOPES, type Scope, type TokenRecord } from '../../service-store/types.ts';
import { type Deps, iso } from './deps.ts';
import type { Actor, TokenStatus } from './types.ts';

const NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

export function statusOf(t: TokenRecord, now: number): TokenStatus {
  return {
    id: t.id,
    name: t.name,
    scopes: t.scopes,
    createdAt: iso(t.createdAt)!,
    expiresAt: iso(t.expiresAt),
    lastUsedAt: iso(t.lastUsedAt),
    revokedAt: iso(t.revokedAt),
    active: t.revokedAt === null && (t.expiresAt === null || t.expiresAt > now),
  };
}

export async function createToken(
  d: Deps,
  input: { name: string; scopes: Scope[]; expiresInMs?: number },
): Promise<{ token: string; status: TokenStatus }> {
  if (!NAME.test(input.name))
    throw new SignetError('E_INPUT_INVALID', 'token name: letters, digits, dot, dash, underscore (max 64)', {
      details: { field: 'name' },
    });
  const bad = input.scopes.filter((s) => !SCOPES.includes(s));
  if (!input.scopes.length || bad.length)
    throw new SignetError('E_INPUT_INVALID', `token scopes: expected one or more of ${SCOPES.join(', ')}`, {
      details: { field: 'scopes', unknown: bad },
    });
  if (await d.store.tokenByName(input.name))
    throw new SignetError('E_CONFLICT', `a token named ${input.name} exists`, {
      hint: 'Revoke it first (`signet serve token revoke NAME`) or choose another name.',
    });
  const now = d.clock();
  const token = newToken();
  const record: TokenRecord = {
    id: newId('tok'),
    name: input.name,
    hash: tokenHash(token),
    scopes: [...new Set(input.scopes)],
    createdAt: now,
    expiresAt: input.expiresInMs ? now + input.expiresInMs : null,
    revokedAt: null,
    lastUsedAt: null,
  };
  await d.store.insertToken(record);
  return { token, status: statusOf(record, now) };
}

export async function listTokens(d: Deps): Promise<TokenStatus[]> {
  const now = d.clock();
  return (await d.store.listTokens()).map((t) => statusOf(t, now));
}

export async function revokeToken(d: Deps, nameOrId: string): Promise<TokenStatus> {
  const all = await d.store.listTokens();
  const t = all.find((x) => x.name === nameOrId || x.id === nameOrId);
  if (!t) throw new SignetError('E_NOT_FOUND', `no token ${nameOrId}`);
  const now = d.clock();
  await d.store.revokeToken(t.id, now);
  return statusOf({ ...t, revokedAt: t.revokedAt ?? now }, now);
}

export async function authenticate(
  d: Deps,
  bearer: string | undefined,
  ip: string,
): Promise<{ actor: Actor; token: TokenRecord }> {
  if (!bearer) throw new SignetError('E_AUTH_MISSING', 'this route needs a bearer token');
  const t = await d.store.tokenByHash(tokenHash(bearer));
  const now = d.clock();
  if (!t || t.revokedAt !== null || (t.expiresAt !== null && t.expiresAt <= now))
    throw new SignetError('E_AUTH_INVALID', 'the token is unknown, expired or revoked');
  // last-used is advisory: at most one write a minute per token
  if (t.lastUsedAt === null || now - t.lastUsedAt > 60_000) await d.store.touchToken(t.id, now);
  return { actor: { kind: 'token', name: t.name, ip, scopes: t.scopes }, token: { ...t, lastUsedAt: now } };
}

export function requireScope(actor: Actor, scope: Scope): void {
  if (actor.scopes.includes('admin') || actor.scopes.includes(scope)) return;
  throw new SignetError('E_AUTH_SCOPE', `this needs the scope ${scope}`, { details: { scope } });
}
