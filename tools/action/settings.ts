/**
 * Typed settings of every action, validated once from the raw inputs (all strings). The keys are
 * the input names of the action.yml files; a test checks both agree.
 */
import { z } from 'zod';
import { REQUEST_ID } from '../lib/deliver/protocol.ts';
import { list } from './action.ts';

const bool = (fallback: boolean) =>
  z
    .enum(['true', 'True', 'TRUE', 'false', 'False', 'FALSE'], { message: 'expected true or false' })
    .optional()
    .transform((v) => (v === undefined ? fallback : v.toLowerCase() === 'true'));
const channel = z.enum(['stable', 'beta'], { message: 'expected stable or beta' }).default('stable');
const optional = z.string().trim().min(1).optional();
const secretRef = z
  .string()
  .regex(/^(env:[A-Za-z_][A-Za-z0-9_]*|file:.+)$/, 'expected env:NAME or file:PATH')
  .optional();
const files = z
  .string()
  .transform(list)
  .refine((l) => l.length > 0, 'name at least one file or glob');
const positiveInt = z.string().regex(/^\d+$/, 'expected a whole number').transform(Number).optional();

const common = {
  'working-directory': optional,
  config: optional,
};

export const versionSettings = z
  .object({
    ...common,
    channel,
    apply: bool(true),
    push: bool(true),
    'run-number': positiveInt,
    'tag-prefix': z.string().optional(),
    component: optional,
  })
  .strict();
export type VersionSettings = z.infer<typeof versionSettings>;

export const changelogSettings = z
  .object({
    ...common,
    version: optional,
    from: optional,
    to: optional,
    'tag-prefix': z.string().optional(),
    write: bool(false),
  })
  .strict();
export type ChangelogSettings = z.infer<typeof changelogSettings>;

export const signSettings = z
  .object({
    ...common,
    files,
    profile: optional,
    release: bool(true),
    'tsa-urls': z.string().transform(list).optional(),
  })
  .strict();
export type SignSettings = z.infer<typeof signSettings>;

export const siteInstallersSettings = z
  .object({
    ...common,
    agent: z.string().trim().min(1, 'the signed agent (path) is required'),
    sites: z.string().trim().min(1, 'sites (JSON array, or file:PATH) is required'),
    'seal-private-key': optional,
    'agent-release': optional,
    to: z.string().trim().min(1).default('auto'),
    token: optional,
    repository: z
      .string()
      .regex(/^[^/\s]+\/[^/\s]+$/, 'expected owner/name')
      .optional(),
    'api-url': z.string().url().optional(),
    'out-dir': z.string().trim().min(1).default('installers'),
    profile: optional,
    'product-version': optional,
    concurrency: positiveInt,
  })
  .strict();
export type SiteInstallersSettings = z.infer<typeof siteInstallersSettings>;

export const publishSettings = z
  .object({
    ...common,
    to: z.string().trim().min(1).default('auto'),
    tag: z.string().trim().min(1, 'the release tag is required'),
    channel,
    files,
    title: optional,
    notes: z.string().optional(),
    'notes-file': optional,
    token: optional,
    'token-ref': secretRef,
    repository: z
      .string()
      .regex(/^[^/\s]+\/[^/\s]+$/, 'expected owner/name')
      .optional(),
    'api-url': z.string().url().optional(),
    profile: optional,
    'allow-dev-signatures': bool(false),
    'allow-site-installers': bool(false),
    prune: bool(true),
    attach: bool(false),
    'dry-run': bool(false),
  })
  .strict();
export type PublishSettings = z.infer<typeof publishSettings>;

export const deliverSettings = z
  .object({
    'working-directory': optional,
    'callback-url': z
      .string({ error: 'the callback URL the server gave in the dispatch is required' })
      .trim()
      .min(1, 'the callback URL the server gave in the dispatch is required'),
    token: optional,
    'sealed-token': optional,
    'seal-private-key': optional,
    'request-id': z
      .string({ error: 'the request id the server gave in the dispatch is required' })
      .trim()
      .regex(REQUEST_ID, 'expected the id the server chose: 1–128 letters, digits and . _ : -'),
    files: z.string().transform(list).optional(),
    status: z.enum(['success', 'failure'], { message: 'expected success or failure' }).default('success'),
    'error-code': optional,
    'error-message': z.string().optional(),
    'ca-file': optional,
  })
  .strict()
  .refine((s) => Boolean(s.token) !== Boolean(s['sealed-token']), {
    message: 'give exactly one of sealed-token and token',
    path: ['sealed-token'],
  });
export type DeliverSettings = z.infer<typeof deliverSettings>;

export const SETTINGS = {
  version: versionSettings,
  changelog: changelogSettings,
  sign: signSettings,
  'site-installers': siteInstallersSettings,
  publish: publishSettings,
  deliver: deliverSettings,
} as const;
