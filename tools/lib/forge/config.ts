import { z } from 'zod';

export const publishConfigSchema = z
  .object({
    forge: z
      .string()
      .regex(/^(auto|github|gitea|dir:.+)$/, 'auto, github, gitea or dir:PATH')
      .default('auto')
      .describe('Where `signet publish` goes when --to is not given'),
    repository: z
      .string()
      .regex(/^[^/\s]+\/[^/\s]+$/)
      .optional()
      .describe('owner/name; from the environment or the git remote when omitted'),
    apiUrl: z.string().url().optional().describe('API base URL (GitHub Enterprise or Gitea)'),
    tokenEnv: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/)
      .default('SIGNET_FORGE_TOKEN')
      .describe('Environment variable holding the forge token'),
    notesTemplates: z.string().optional().describe('Folder with stable.md / beta.md body templates'),
    concurrency: z.number().int().min(1).max(8).default(2).describe('Parallel uploads'),
    prune: z.boolean().default(true).describe('Delete release assets that are not part of the published set'),
    checksums: z.boolean().default(true).describe('Upload a SHA256SUMS asset'),
    timeouts: z
      .object({
        connectMs: z
          .number()
          .int()
          .min(100)
          .default(30_000)
          .describe('Opening a connection to the forge (TCP and TLS)'),
        idleMs: z
          .number()
          .int()
          .min(100)
          .default(120_000)
          .describe('A request fails (and is retried) when nothing moves for this long'),
        deadlineMs: z
          .number()
          .int()
          .min(100)
          .default(3_600_000)
          .describe('One forge operation, every retry included, gives up after this long'),
      })
      .strict()
      .default({ connectMs: 30_000, idleMs: 120_000, deadlineMs: 3_600_000 })
      .describe('Time limits of forge requests'),
  })
  .strict();

export type PublishConfig = z.infer<typeof publishConfigSchema>;
