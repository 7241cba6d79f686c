/**
 * Local RFC 3161 TSAs for tests (see tools/lib/sign/local-tsa.ts), closed after the test file.
 * Modes: ok, down (connection dropped), error (HTTP 500), slow (delayMs), garbage (random bytes).
 */
import { afterAll } from 'vitest';
import { type LocalTsa, startLocalTsa, type TsaMode } from '../../tools/lib/sign/local-tsa.ts';
import type { TestPki } from './pki.ts';

export type { LocalTsa, TsaMode };

export async function startTestTsa(
  pki: Pick<TestPki, 'tsaCert' | 'tsaKey' | 'caCert'>,
  mode: TsaMode = 'ok',
  options: { delayMs?: number } = {},
): Promise<LocalTsa> {
  const tsa = await startLocalTsa({
    cert: pki.tsaCert,
    key: pki.tsaKey,
    chain: pki.caCert,
    mode,
    ...(options.delayMs !== undefined ? { delayMs: options.delayMs } : {}),
  });
  afterAll(() => tsa.close());
  return tsa;
}

/** A URL on 127.0.0.1 where nothing listens (connection refused). */
export async function deadUrl(): Promise<string> {
  const { createServer } = await import('node:net');
  const server = createServer();
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  const { port } = server.address() as import('node:net').AddressInfo;
  await new Promise<void>((ok) => server.close(() => ok()));
  return `http://127.0.0.1:${port}/`;
}
