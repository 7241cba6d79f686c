import { z } from 'zod';

export const publishConfigSchema = z
  .object({
    forge: z.enum(['auto', 'github', 'gitea', 'dir']).default('auto'),
    repository: z
      .string()
      .regex(/^[^/\s]+\/[^/\s]+$/)
      .optional()
      .describe('owner/name; from the environment or the git remote when omitted'),
    apiUrl: z.string().url().optional().describe('API base URL (GitHub Enterprise or Gitea)'),
    tokenEnv: z.string().default('SIGNET_FORGE_TOKEN'),
    notesTemplates: z.string().optional().describe('Folder with stable.md / beta.md body templates'),
  })
  .strict();

export type PublishConfig = z.infer<typeof publishConfigSchema>;
