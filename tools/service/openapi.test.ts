import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { COMMITTED_PATH, openapiDocument } from './openapi.ts';

describe('the OpenAPI document', () => {
  it('the committed schema/service.openapi.json is what the routes generate (run `node tools/service/openapi.ts --write`)', async () => {
    expect(JSON.parse(readFileSync(COMMITTED_PATH, 'utf8'))).toEqual(await openapiDocument());
  });

  it('is OpenAPI 3.1: unique operation ids, every authenticated operation has bearer security and the auth errors', async () => {
    // biome-ignore lint/suspicious/noExplicitAny: an OpenAPI document
    type Json = any;
    const doc = (await openapiDocument()) as Json;
    expect(doc.openapi).toBe('3.1.0');
    const ids: string[] = [];
    for (const [path, ops] of Object.entries(doc.paths) as [string, Record<string, Json>][])
      for (const [method, op] of Object.entries(ops)) {
        ids.push(op.operationId);
        const open =
          ['/healthz', '/readyz', '/metrics', '/v1/openapi.json'].includes(path) || path.startsWith('/dl/');
        if (open) expect(op.security, `${method} ${path}`).toBeUndefined();
        else {
          expect(op.security, `${method} ${path}`).toHaveLength(1);
          for (const s of ['400', '401', '403', '429', '500'])
            expect(op.responses[s], `${method} ${path} ${s}`).toBeDefined();
        }
      }
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toHaveLength(21);
    expect(doc.components.schemas.Site.properties).not.toHaveProperty('enrollmentKey');
  });
});
