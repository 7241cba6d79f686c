import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { jsonSchema } from './schema.ts';

const committed = join(
  dirname(fileURLToPath(import.meta.url)),
  '..',
  '..',
  '..',
  'schema',
  'signet.config.schema.json',
);

describe('JSON Schema of signet.config.yaml', () => {
  it('the committed schema is what `signet schema` emits (run `npm run signet -- schema --out schema/signet.config.schema.json`)', () => {
    expect(JSON.parse(readFileSync(committed, 'utf8'))).toEqual(jsonSchema());
  });

  it('describes every section and refuses unknown keys', () => {
    const schema = jsonSchema() as { properties: Record<string, unknown>; additionalProperties: unknown };
    expect(Object.keys(schema.properties)).toEqual(
      expect.arrayContaining(['version', 'changelog', 'git', 'signing', 'installers', 'publish']),
    );
    expect(schema.additionalProperties).toBe(false);
  });
});
