import { z } from 'zod';

const secretRef = z
  .string()
  .regex(/^(env:[A-Za-z_][A-Za-z0-9_]*|file:.+)$/, 'a secret must be env:NAME or file:PATH, never a literal');

/**
 * A key or certificate file: a path, `env:NAME` (the variable holds the path, PEM text or base64
 * of the file) or `file:PATH` (the file itself, or its base64). See key-material.ts.
 */
const material = (what: string) =>
  z
    .string()
    .regex(
      /^(env:[A-Za-z_][A-Za-z0-9_]*|file:.+|(?!env:|file:).+)$/,
      'expected a path, env:NAME (a variable holding the path, PEM text or base64 of the file) or file:PATH',
    )
    .describe(`${what}: a path, env:NAME (path, PEM text or base64 in the variable) or file:PATH`);

/**
 * A credential in a TSA URL (`http://user:pass@host/`) would travel on osslsigncode's command line
 * and into messages: refused. Secrets come as env:NAME / file:PATH, and osslsigncode has no such
 * channel for a TSA, so an authenticated TSA is not supported.
 */
export function hasUserinfo(url: string): boolean {
  try {
    const u = new URL(url);
    return u.username !== '' || u.password !== '';
  } catch {
    return /^[a-z][a-z0-9+.-]*:\/\/[^/?#]*@/i.test(url);
  }
}

export const TSA_USERINFO_MESSAGE =
  'a TSA URL must not carry user:password@ (it would reach the command line and logs); use a TSA without credentials';

export const timestampSchema = z
  .object({
    urls: z
      .array(
        z
          .string()
          .url()
          .refine((u) => !hasUserinfo(u), TSA_USERINFO_MESSAGE),
      )
      .default([])
      .describe('RFC 3161 TSA URLs, tried in order'),
    retries: z.number().int().min(0).max(10).default(2),
    retryWaitMs: z.number().int().min(0).default(1000),
    timeoutMs: z.number().int().min(100).default(15000),
  })
  .strict();

export const verifySchema = z
  .object({
    caFile: z.string().optional().describe('CA bundle (PEM); the system store when omitted'),
    tsaCaFile: z.string().optional(),
    leafSha256: z
      .array(z.string().regex(/^[0-9a-fA-F]{64}$/))
      .default([])
      .describe('Pinned signer certificates (SHA-256 of DER)'),
    subject: z
      .string()
      .optional()
      .describe(
        'Expected signer subject: the whole one-line DN, matched exactly (e.g. "/CN=Example Ltd/O=Example Ltd")',
      ),
  })
  .strict();

const common = {
  timestamp: z
    .union([timestampSchema, z.literal(false)])
    .default({ urls: [], retries: 2, retryWaitMs: 1000, timeoutMs: 15000 }),
  verify: verifySchema.default({ leafSha256: [] }),
  digest: z.enum(['sha256', 'sha384', 'sha512', 'sha1']).default('sha256'),
  dev: z.boolean().default(false).describe('A dev profile: throwaway certificates, never for release'),
  description: z.string().optional().describe('Signature description (-n); defaults to the file name'),
  productUrl: z.string().url().optional().describe('Product URL embedded in the signature (-i)'),
};

export const osslsigncodeProfileSchema = z
  .object({
    backend: z.literal('osslsigncode'),
    cert: material('Certificate chain (PEM/DER), leaf first').optional(),
    key: material('Private key (PEM/DER), or a pkcs11: URI').optional(),
    pkcs12: material('PKCS#12 (.p12/.pfx) file with key and chain').optional(),
    password: secretRef.optional(),
    pkcs11: z
      .object({
        module: z.string(),
        engine: z.string().optional(),
        cert: z.string().describe('pkcs11: URI of the certificate'),
        key: z.string().describe('pkcs11: URI of the private key'),
        pin: secretRef,
      })
      .strict()
      .optional(),
    osslsigncode: z.string().default('osslsigncode').describe('osslsigncode program'),
    timeoutMs: z.number().int().min(1000).default(300_000).describe('Time limit of one osslsigncode run'),
    ...common,
  })
  .strict();

export const jsignProfileSchema = z
  .object({
    backend: z.literal('jsign'),
    jar: z.string().describe('Path of jsign.jar'),
    java: z.string().default('java'),
    storetype: z.enum([
      'TRUSTEDSIGNING',
      'AZUREKEYVAULT',
      'AWS',
      'GOOGLECLOUD',
      'PKCS11',
      'YUBIKEY',
      'PKCS12',
      'JKS',
    ]),
    keystore: z
      .string()
      .optional()
      .describe(
        'Keystore per storetype; for PKCS12/JKS the keystore file: a path, env:NAME (path, PEM or base64) or file:PATH',
      ),
    alias: z.string().optional(),
    storepass: secretRef.optional(),
    keypass: secretRef.optional(),
    certfile: material('Certificate chain file (required by some storetypes)').optional(),
    endpoint: z.string().optional().describe('TRUSTEDSIGNING: endpoint host, e.g. weu.codesigning.azure.net'),
    account: z.string().optional().describe('TRUSTEDSIGNING: signing account name'),
    certificateProfile: z.string().optional().describe('TRUSTEDSIGNING: certificate profile name'),
    tsmode: z.enum(['RFC3161', 'AUTHENTICODE']).optional().describe('Defaults to RFC3161'),
    timeoutMs: z.number().int().min(1000).default(600_000),
    ...common,
  })
  .strict();

export const remoteProfileSchema = z
  .object({
    backend: z.literal('remote'),
    url: z.string().url(),
    token: secretRef,
    timeoutMs: z.number().int().min(100).default(30000),
    retries: z.number().int().min(0).max(10).default(3),
    retryWaitMs: z.number().int().min(0).default(1000).describe('First backoff; doubles per retry'),
    caFile: material("CA bundle (PEM) that signs the server's HTTPS certificate").optional(),
    ...common,
  })
  .strict();

/** A signing profile; one object per backend (sign/backends/), told apart by `backend`. */
export const profileSchema = z.discriminatedUnion('backend', [
  osslsigncodeProfileSchema,
  jsignProfileSchema,
  remoteProfileSchema,
]);

export const signingConfigSchema = z
  .object({
    defaultProfile: z.string().default('release'),
    profiles: z.record(z.string(), profileSchema).default({}),
    concurrency: z.number().int().min(1).optional(),
  })
  .strict();

export type SigningProfile = z.infer<typeof profileSchema>;
export type SigningConfig = z.infer<typeof signingConfigSchema>;
