import { z } from 'zod';
import { DEFAULT_COMMIT_MESSAGE } from './release-commit.ts';

export const bumpSchema = z.enum(['major', 'minor', 'patch']);

export const releaseRuleSchema = z
  .object({
    type: z.string().min(1).describe('Conventional commit type, e.g. refactor'),
    scope: z.string().min(1).optional().describe('Only commits with this scope (e.g. deps)'),
    bump: z.union([bumpSchema, z.literal(false)]).describe('Bump for matching commits, or false for none'),
  })
  .strict();

export const manifestSchema = z.union([
  z
    .string()
    .min(1)
    .describe('Path of a Cargo.toml, package.json or VERSION file, relative to the repository'),
  z
    .object({
      path: z.string().min(1),
      type: z
        .enum(['cargo', 'npm', 'plain', 'regex'])
        .optional()
        .describe('Detected from the file name when omitted'),
      pattern: z
        .string()
        .optional()
        .describe('For type regex: a pattern whose first group is the version')
        .refine(
          (p) => {
            if (p === undefined) return true;
            try {
              return new RegExp(`${p}|`).exec('')!.length > 1;
            } catch {
              return false;
            }
          },
          { message: 'must be a valid regular expression with a capture group for the version' },
        ),
    })
    .strict()
    .refine((m) => m.type !== 'regex' || m.pattern !== undefined, {
      message: 'type regex needs a pattern',
      path: ['pattern'],
    }),
]);

export const componentSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'letters, digits, dot, dash, underscore'),
    paths: z.array(z.string().min(1)).min(1).describe('Paths (directories or files) owned by the component'),
    manifests: z.array(manifestSchema).default([]),
    tagPrefix: z.string().optional().describe('Per-component tag prefix, e.g. agent-v'),
  })
  .strict();

/** The prefix when `version.tagPrefix` is not set (lenient: bare X.Y.Z tags count as well). */
export const DEFAULT_TAG_PREFIX = 'v';

export const versionConfigSchema = z
  .object({
    tagPrefix: z
      .string()
      .optional()
      .describe(
        'Prefix of release tags; "" for bare 1.2.3 tags. Unset: "v", and bare 1.2.3 tags count as releases too (a new tag follows the form of the last one); set explicitly, only tags with this prefix count',
      ),
    manifests: z
      .array(manifestSchema)
      .default([])
      .describe('Manifests whose version is written on a stable release; the first is primary'),
    components: z.array(componentSchema).default([]),
    releaseRules: z.array(releaseRuleSchema).default([]),
    breakingInZeroMajor: z
      .enum(['minor', 'major'])
      .default('minor')
      .describe('Bump for a breaking change while the version is 0.x (semantic-release bumps major)'),
    betaIdentifier: z
      .string()
      .regex(/^[0-9A-Za-z-]+$/)
      .default('beta'),
    initialVersion: z
      .string()
      .regex(
        /^(0|[1-9]\d{0,14})\.(0|[1-9]\d{0,14})\.(0|[1-9]\d{0,14})$/,
        'a version MAJOR.MINOR.PATCH such as 1.0.0',
      )
      .refine((v) => v !== '0.0.0', 'the first release cannot be 0.0.0')
      .optional()
      .describe(
        'First release when there is no stable tag and the primary manifest has no version or a placeholder (0.0.0-…); default 1.0.0',
      ),
  })
  .strict();

export const changelogConfigSchema = z
  .object({
    file: z.string().default('CHANGELOG.md'),
    notesDir: z.string().default('.signet/notes').describe('Where per-version notes files are written'),
    sections: z.array(z.object({ type: z.string(), title: z.string() }).strict()).default([
      { type: 'feat', title: 'Features' },
      { type: 'fix', title: 'Bug fixes' },
      { type: 'perf', title: 'Performance' },
    ]),
    repoUrl: z
      .string()
      .url()
      .optional()
      .describe('Web URL of the repository; derived from the git remote when omitted'),
    host: z
      .enum(['github', 'gitea'])
      .optional()
      .describe('Link format; derived from the remote host when omitted'),
  })
  .strict();

export const gitConfigSchema = z
  .object({
    remote: z.string().default('origin'),
    authorName: z.string().default('signet-release'),
    authorEmail: z.string().default('signet-release@users.noreply.local'),
    commitMessage: z
      .string()
      .default(DEFAULT_COMMIT_MESSAGE)
      .refine((m) => m.includes('{tag}') || m.includes('{version}'), {
        message: 'must contain {tag} or {version}',
      })
      .describe('{tag} and {version} are replaced'),
    tokenEnv: z
      .string()
      .regex(
        /^[A-Za-z_][A-Za-z0-9_]*$/,
        'an environment variable NAME (the token itself never goes in the config)',
      )
      .default('SIGNET_GIT_TOKEN')
      .describe('Env var holding an HTTPS token for --push'),
  })
  .strict();

export type VersionConfig = z.infer<typeof versionConfigSchema>;
export type ChangelogConfig = z.infer<typeof changelogConfigSchema>;
export type GitConfig = z.infer<typeof gitConfigSchema>;
