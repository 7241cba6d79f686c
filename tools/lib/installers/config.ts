import { z } from 'zod';

const identifier = z
  .string()
  .regex(/^[A-Za-z][A-Za-z0-9._-]{0,63}$/, 'letters, digits, dot, dash, underscore; starts with a letter');

export const productConfigSchema = z
  .object({
    vendor: identifier.default('ExampleVendor'),
    product: identifier.default('Agent'),
    serviceName: identifier.default('ExampleAgent'),
    agentFileName: z
      .string()
      .regex(/^[A-Za-z0-9._-]+\.exe$/)
      .default('agent.exe'),
    installArgs: z
      .array(z.string().regex(/^[A-Za-z0-9._=:/-]+$/))
      .default(['install'])
      .describe('Arguments of the agent install command'),
    uninstallArgs: z.array(z.string().regex(/^[A-Za-z0-9._=:/-]+$/)).default(['uninstall']),
    upgradeCode: z
      .string()
      .regex(/^\{?[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\}?$/)
      .optional()
      .describe('Fixed per product; derived deterministically from vendor+product when omitted'),
    icon: z.string().optional(),
    removeConfigOnUninstall: z.boolean().default(true),
  })
  .strict();

export const installersConfigSchema = z
  .object({
    product: productConfigSchema.default(productConfigSchema.parse({})),
    outputName: z
      .string()
      .default('{product}-{site}-v{keyVersion}-{fp}')
      .describe('File name pattern (validated identifiers only)'),
    nsisTemplate: z.string().optional().describe('Path of a custom .nsi template'),
    wixTemplate: z.string().optional().describe('Path of a custom .wxs template'),
    compression: z.enum(['none', 'zlib', 'lzma']).default('zlib'),
    concurrency: z.number().int().min(1).optional(),
    cacheDir: z.string().default('.signet-cache/installers'),
  })
  .strict();

export type ProductConfig = z.infer<typeof productConfigSchema>;
export type InstallersConfig = z.infer<typeof installersConfigSchema>;
