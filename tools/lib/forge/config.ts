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
  })
  .strict();

export type PublishConfig = z.infer<typeof publishConfigSchema>;
