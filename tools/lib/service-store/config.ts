/** The `service:` section of signet.config.yaml: how `signet serve` runs. */
import { z } from 'zod';

const secretRef = z
  .string()
  .regex(/^(env:[A-Za-z_][A-Za-z0-9_]*|file:.+)$/, 'a secret must be env:NAME or file:PATH, never a literal');

export const WEBHOOK_EVENTS = ['build.completed', 'site.key_rotated', 'release.created'] as const;

export const serviceConfigSchema = z
  .object({
    data: z
      .string()
      .default('.signet-service')
      .describe('Folder of the service: its database (service.db) and content-addressed blobs'),
    listen: z
      .string()
      .regex(/^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9.-]+):\d{1,5}$/, 'expected HOST:PORT')
      .default('127.0.0.1:8750')
      .describe('Address to listen on; plain HTTP only on loopback unless behindProxy'),
    publicUrl: z
      .string()
      .url()
      .optional()
      .describe('Base URL the service is reached at (download links are built on it)'),
    masterKey: secretRef
      .optional()
      .describe('32-byte key (base64) that encrypts enrollment keys at rest: env:NAME or file:PATH'),
    profile: z.string().optional().describe('Signing profile for installers and /v1/sign'),
    tls: z
      .object({ cert: z.string(), key: z.string() })
      .strict()
      .optional()
      .describe('TLS certificate chain and key files (PEM)'),
    behindProxy: z
      .boolean()
      .default(false)
      .describe('A TLS proxy is in front: allow plain HTTP on a non-loopback address, trust X-Forwarded-*'),
    maxUploadBytes: z
      .number()
      .int()
      .min(1024)
      .default(512 * 1024 * 1024)
      .describe('Largest agent or file accepted by POST /v1/releases and /v1/sign'),
    rateLimit: z
      .object({
        max: z.number().int().min(1).default(600),
        windowMs: z.number().int().min(1000).default(60_000),
      })
      .strict()
      .default({ max: 600, windowMs: 60_000 })
      .describe('Requests per token (or per address without one) per window'),
    buildConcurrency: z.number().int().min(1).optional().describe('Site builds at once (default: cores)'),
    webhooks: z
      .array(
        z
          .object({
            url: z.string().url(),
            secret: secretRef,
            events: z.array(z.enum(WEBHOOK_EVENTS)).min(1),
          })
          .strict(),
      )
      .default([]),
    queue: z
      .string()
      .optional()
      .describe(
        'redis://HOST:PORT (or env:/file: holding it): batch builds go to BullMQ for `signet worker` processes',
      ),
    cacheBytes: z
      .number()
      .int()
      .min(0)
      .default(5 * 1024 ** 3)
      .describe(
        'Whole installer files kept beyond their base + delta (assembled again on download when evicted)',
      ),
    leaseMs: z
      .number()
      .int()
      .min(1000)
      .default(30_000)
      .describe(
        'How long a build claim (and a worker’s job lock) holds without renewal; a dead builder’s work is taken over after it',
      ),
    database: z
      .string()
      .optional()
      .describe('postgres://… to keep records in PostgreSQL instead of the embedded SQLite file'),
  })
  .strict();

export type ServiceConfig = z.infer<typeof serviceConfigSchema>;
