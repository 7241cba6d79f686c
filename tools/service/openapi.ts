/**
 * The service's OpenAPI 3.1 document, generated from the route schemas. `node
 * tools/service/openapi.ts --write` (or `signet serve openapi --out FILE`) writes
 * schema/service.openapi.json; a test fails when the committed file differs from this.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ServiceApi } from '../lib/app/service/types.ts';
import { buildServiceApp } from './app.ts';

export const COMMITTED_PATH = join(import.meta.dirname, '..', '..', 'schema', 'service.openapi.json');

/** The document as the service serves it at /v1/openapi.json (no use case is called). */
export async function openapiDocument(): Promise<Record<string, unknown>> {
  const api = new Proxy({} as ServiceApi, {
    get: () => () => {
      throw new Error('the OpenAPI generator calls no use case');
    },
  });
  const app = await buildServiceApp(api, {
    maxUploadBytes: 1024 * 1024,
    rateLimit: { max: 1000, windowMs: 60_000 },
    trustProxy: false,
  });
  await app.ready();
  const doc = app.swagger() as unknown as Record<string, unknown>;
  await app.close();
  return JSON.parse(JSON.stringify(doc)) as Record<string, unknown>;
}

export function openapiText(doc: Record<string, unknown>): string {
  return `${JSON.stringify(doc, null, 2)}\n`;
}

if (import.meta.main) {
  const out = process.argv.includes('--write') ? COMMITTED_PATH : undefined;
  const text = openapiText(await openapiDocument());
  if (out) {
    writeFileSync(out, text);
    process.stderr.write(`wrote ${out}\n`);
  } else process.stdout.write(text);
}
