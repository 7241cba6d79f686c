/**
 * The `installers` section of signet.config: the product every site installer wraps. Every value
 * here that reaches an NSIS or WiX template is validated to a narrow character set, so that a
 * template never needs escaping; free text (site labels) never reaches a template at all.
 */
import { z } from 'zod';

const identifier = z
  .string()
  .regex(/^[A-Za-z][A-Za-z0-9._-]{0,63}$/, 'letters, digits, dot, dash, underscore; starts with a letter');

/** A folder name under Program Files / ProgramData: letters, digits, space, dot, dash, underscore. */
const pathSegment = z
  .string()
  .regex(
    /^[A-Za-z0-9](?:[A-Za-z0-9 ._-]{0,62}[A-Za-z0-9_-])?$/,
    'letters, digits, space, dot, dash, underscore; no leading/trailing space or dot',
  );

const argument = z.string().regex(/^[A-Za-z0-9._=:/-]+$/, 'letters, digits and . _ = : / - only');

export const productConfigSchema = z
  .object({
    vendor: pathSegment.default('ExampleVendor').describe('Folder under Program Files and ProgramData'),
    product: pathSegment.default('Agent').describe('Product name and sub-folder'),
    serviceName: identifier.default('ExampleAgent').describe('Name of the Windows service of the agent'),
    agentFileName: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}\.exe$/)
      .default('agent.exe'),
    installArgs: z
      .array(argument)
      .min(1)
      .default(['install'])
      .describe('Arguments of the agent install command (registers and starts its service)'),
    uninstallArgs: z.array(argument).min(1).default(['uninstall']),
    serviceArgs: z
      .array(argument)
      .default(['run'])
      .describe('Arguments the service is started with (MSI ServiceInstall mode)'),
    msiService: z
      .enum(['agentCommand', 'serviceInstall'])
      .default('agentCommand')
      .describe(
        'MSI: run the agent install/uninstall commands as deferred custom actions (like the NSIS installer), or register the service with the ServiceInstall table (serviceArgs)',
      ),
    upgradeCode: z
      .string()
      .regex(/^\{?[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}\}?$/)
      .optional()
      .describe('Fixed per product; derived deterministically from vendor+product when omitted'),
    icon: z.string().optional().describe('Path of an .ico file for both installers'),
    removeConfigOnUninstall: z.boolean().default(true).describe('Delete site.json on uninstall'),
  })
  .strict();

export const installersConfigSchema = z
  .object({
    product: productConfigSchema.default(productConfigSchema.parse({})),
    outputName: z
      .string()
      .default('{product}-{site}-v{keyVersion}-{fp}')
      .describe(
        'Output file name without extension; variables {vendor} {product} {site} {keyVersion} {fp} {version}',
      ),
    nsisTemplate: z.string().optional().describe('Path of a custom .nsi template'),
    wixTemplate: z.string().optional().describe('Path of a custom .wxs template'),
    compression: z.enum(['none', 'zlib', 'lzma']).default('zlib').describe('NSIS compression'),
    concurrency: z
      .number()
      .int()
      .min(1)
      .optional()
      .describe(
        'Sites built at once (default: twice the CPU cores when sites are assembled from shared parts, else the cores)',
      ),
    cacheDir: z
      .string()
      .default('.signet-cache/installers')
      .describe('Folder of the build work folders (the cache itself is the manifests in the output folder)'),
    keepWork: z.boolean().default(false).describe('Keep the rendered sources and work files of each build'),
  })
  .strict();

export type ProductConfig = z.infer<typeof productConfigSchema>;
export type InstallersConfig = z.infer<typeof installersConfigSchema>;
