/**
 * signet.config.(yaml|json): one schema composed of each area's section. `signet schema` writes
 * it as JSON Schema (committed as schema/signet.config.schema.json) so editors complete and check the file.
 */
import { z } from 'zod';
import { publishConfigSchema } from '../forge/config.ts';
import { installersConfigSchema } from '../installers/config.ts';
import { serviceConfigSchema } from '../service-store/config.ts';
import { signingConfigSchema } from '../sign/config.ts';
import { changelogConfigSchema, gitConfigSchema, versionConfigSchema } from '../version/config.ts';

export const configSchema = z
  .object({
    $schema: z.string().optional(),
    version: versionConfigSchema.default(versionConfigSchema.parse({})),
    changelog: changelogConfigSchema.default(changelogConfigSchema.parse({})),
    git: gitConfigSchema.default(gitConfigSchema.parse({})),
    signing: signingConfigSchema.default(signingConfigSchema.parse({})),
    installers: installersConfigSchema.default(installersConfigSchema.parse({})),
    publish: publishConfigSchema.default(publishConfigSchema.parse({})),
    service: serviceConfigSchema.default(serviceConfigSchema.parse({})),
  })
  .strict();

export type SignetConfig = z.infer<typeof configSchema>;

export function jsonSchema(): unknown {
  return z.toJSONSchema(configSchema, { io: 'input', unrepresentable: 'any' });
}
