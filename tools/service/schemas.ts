/**
 * The JSON schemas of the service's requests and answers: Fastify validates and serializes with
 * them, @fastify/swagger documents them (OpenAPI 3.1), so validation and documentation come from
 * one declaration. Shared shapes are registered once (`$id`) and referenced as `Name#`; response
 * schemas list every property (fast-json-stringify drops anything else, so a field the use case
 * did not mean to expose — an enrollment key, a token hash — never reaches a client).
 */

/** Site codes as the installers accept them (tools/lib/installers/site.ts SITE_CODE_RE). */
export const SITE_CODE_PATTERN = '^[A-Za-z0-9][A-Za-z0-9-]{0,63}$';
export const VERSION_PATTERN = '^\\d{1,9}\\.\\d{1,9}\\.\\d{1,9}(-[0-9A-Za-z.-]{1,64})?$';
export const LINK_TOKEN_PATTERN = '^[A-Za-z0-9_-]{16,128}$';
export const SCOPE_ENUM = ['sites:read', 'sites:write', 'installers:read', 'releases:write', 'sign', 'admin'];
export const CHANNEL_ENUM = ['stable', 'beta'];
export const KIND_ENUM = ['exe', 'msi'];

const str = { type: 'string' } as const;
const nullableStr = { type: ['string', 'null'] } as const;
const dateTime = { type: 'string', format: 'date-time' } as const;
const nullableDateTime = { type: ['string', 'null'], format: 'date-time' } as const;
const int = { type: 'integer' } as const;

const channel = { type: 'string', enum: CHANNEL_ENUM } as const;
const kind = { type: 'string', enum: KIND_ENUM } as const;
const versionStr = { type: 'string', pattern: VERSION_PATTERN, maxLength: 96 } as const;
const releaseRef = {
  type: 'object',
  required: ['version', 'channel'],
  properties: { version: str, channel },
  additionalProperties: false,
} as const;
const outputRef = {
  type: 'object',
  required: ['sha256', 'size', 'fileName'],
  properties: { sha256: str, size: int, fileName: str },
  additionalProperties: false,
} as const;

/** Shared schemas, registered with `app.addSchema` and emitted under components.schemas. */
export const SHARED = [
  {
    $id: 'Error',
    type: 'object',
    description: 'Every failure: the code is one of Signet’s error codes (docs/service.md lists them).',
    required: ['error'],
    properties: {
      error: {
        type: 'object',
        required: ['code', 'message', 'hint'],
        properties: {
          code: { type: 'string', pattern: '^E_[A-Z0-9_]+$' },
          message: str,
          hint: str,
          details: { type: 'object', additionalProperties: true },
        },
        additionalProperties: false,
      },
    },
    additionalProperties: false,
  },
  {
    $id: 'TokenStatus',
    type: 'object',
    required: ['id', 'name', 'scopes', 'createdAt', 'expiresAt', 'lastUsedAt', 'revokedAt', 'active'],
    properties: {
      id: str,
      name: str,
      scopes: { type: 'array', items: { type: 'string', enum: SCOPE_ENUM } },
      createdAt: dateTime,
      expiresAt: nullableDateTime,
      lastUsedAt: nullableDateTime,
      revokedAt: nullableDateTime,
      active: { type: 'boolean' },
    },
    additionalProperties: false,
  },
  {
    $id: 'Release',
    type: 'object',
    required: [
      'id',
      'version',
      'channel',
      'agentSha256',
      'agentSize',
      'signer',
      'timestamp',
      'createdAt',
      'current',
    ],
    properties: {
      id: str,
      version: str,
      channel,
      agentSha256: str,
      agentSize: int,
      signer: {
        type: 'object',
        required: ['subject', 'leafSha256'],
        properties: { subject: str, leafSha256: str },
        additionalProperties: false,
      },
      timestamp: nullableStr,
      createdAt: dateTime,
      current: { type: 'boolean', description: 'The newest verified release of its channel' },
    },
    additionalProperties: false,
  },
  {
    $id: 'Site',
    type: 'object',
    description: 'A site without its enrollment key (write-only); fingerprint is `vN (XXXX)`.',
    required: [
      'siteCode',
      'serverUrl',
      'company',
      'siteName',
      'department',
      'deviceType',
      'tags',
      'keyVersion',
      'fingerprint',
      'createdAt',
      'updatedAt',
    ],
    properties: {
      siteCode: str,
      serverUrl: str,
      company: str,
      siteName: str,
      department: str,
      deviceType: str,
      tags: { type: 'array', items: str },
      keyVersion: int,
      fingerprint: str,
      createdAt: dateTime,
      updatedAt: dateTime,
    },
    additionalProperties: false,
  },
  {
    $id: 'Link',
    type: 'object',
    required: ['id', 'url', 'siteCode', 'kind', 'channel', 'version', 'keyVersion', 'expiresAt'],
    properties: {
      id: str,
      url: {
        type: 'string',
        description: 'Unauthenticated download URL (GET/HEAD); a secret until it expires',
      },
      siteCode: str,
      kind,
      channel,
      version: nullableStr,
      keyVersion: int,
      expiresAt: dateTime,
    },
    additionalProperties: false,
  },
  {
    $id: 'Build',
    type: 'object',
    required: ['id', 'state', 'release', 'total', 'done', 'failed', 'results', 'createdAt', 'finishedAt'],
    properties: {
      id: str,
      state: { type: 'string', enum: ['queued', 'running', 'completed', 'failed'] },
      release: releaseRef,
      total: int,
      done: int,
      failed: int,
      results: {
        type: 'array',
        items: {
          type: 'object',
          required: ['siteCode', 'ok'],
          properties: {
            siteCode: str,
            ok: { type: 'boolean' },
            exe: outputRef,
            msi: outputRef,
            error: {
              type: 'object',
              required: ['code', 'message'],
              properties: { code: str, message: str },
              additionalProperties: false,
            },
          },
          additionalProperties: false,
        },
      },
      createdAt: dateTime,
      finishedAt: nullableDateTime,
    },
    additionalProperties: false,
  },
  {
    $id: 'Health',
    type: 'object',
    required: ['ok', 'checks'],
    properties: {
      ok: { type: 'boolean' },
      checks: {
        type: 'array',
        items: {
          type: 'object',
          required: ['name', 'ok'],
          properties: { name: str, ok: { type: 'boolean' }, detail: str },
          additionalProperties: false,
        },
      },
    },
    additionalProperties: false,
  },
  {
    $id: 'AuditEntry',
    type: 'object',
    required: ['at', 'actorKind', 'actor', 'ip', 'action', 'siteCode', 'result', 'detail'],
    properties: {
      id: int,
      at: dateTime,
      actorKind: { type: 'string', enum: ['token', 'link', 'anonymous'] },
      actor: str,
      ip: str,
      action: str,
      siteCode: nullableStr,
      result: str,
      detail: nullableStr,
    },
    additionalProperties: false,
  },
  {
    $id: 'Delivery',
    type: 'object',
    required: [
      'id',
      'event',
      'url',
      'attempts',
      'state',
      'lastStatus',
      'lastError',
      'nextAt',
      'createdAt',
      'deliveredAt',
    ],
    properties: {
      id: str,
      event: str,
      url: str,
      attempts: int,
      state: { type: 'string', enum: ['pending', 'delivered', 'failed'] },
      lastStatus: { type: ['integer', 'null'] },
      lastError: nullableStr,
      nextAt: dateTime,
      createdAt: dateTime,
      deliveredAt: nullableDateTime,
    },
    additionalProperties: false,
  },
] as const;

export const ref = (id: string) => ({ $ref: `${id}#` });

export const errorResponse = (description: string) => ({ description, ...ref('Error') });

export const page = (id: string) => ({
  type: 'object',
  required: ['items', 'next'],
  properties: {
    items: { type: 'array', items: ref(id) },
    next: { type: ['string', 'null'], description: 'Cursor of the next page; null at the end' },
  },
  additionalProperties: false,
});

export const siteCodeParam = {
  type: 'object',
  required: ['siteCode'],
  properties: { siteCode: { type: 'string', pattern: SITE_CODE_PATTERN, maxLength: 64 } },
  additionalProperties: false,
} as const;

export const pageQuery = {
  type: 'object',
  properties: {
    cursor: { type: 'string', maxLength: 512 },
    limit: { type: 'integer', minimum: 1, maximum: 500, default: 100 },
  },
  additionalProperties: false,
} as const;

const label = { type: 'string', maxLength: 65_536 } as const;

export const siteInputBody = {
  type: 'object',
  required: ['serverUrl', 'keyVersion'],
  properties: {
    serverUrl: { type: 'string', minLength: 1, maxLength: 2048 },
    company: label,
    siteName: label,
    department: label,
    deviceType: label,
    tags: { type: 'array', maxItems: 256, items: label },
    keyVersion: { type: 'integer', minimum: 1, maximum: 1_000_000 },
    enrollmentKey: {
      type: 'string',
      minLength: 16,
      maxLength: 4096,
      description: 'Write-only; required for a new site and with every new keyVersion (rotation)',
    },
  },
  additionalProperties: false,
} as const;

export const linkBody = {
  type: 'object',
  required: ['kind', 'expiresIn'],
  properties: {
    kind,
    channel,
    version: versionStr,
    expiresIn: {
      description:
        'Lifetime: seconds (an integer), or a duration such as "90m", "1h", "7d"; between a minute and 30 days',
      // one schema with a type list (not anyOf): request coercion never turns one form into the other
      type: ['integer', 'string'],
      minimum: 60,
      maximum: 2_592_000,
      pattern: '^[1-9][0-9]{0,6}[smhd]$',
    },
  },
  additionalProperties: false,
} as const;

export const buildBody = {
  type: 'object',
  required: ['sites'],
  properties: {
    channel,
    version: versionStr,
    sites: {
      description: 'The site codes, or "all"',
      type: ['array', 'string'],
      pattern: '^all$',
      minItems: 1,
      maxItems: 10_000,
      items: { type: 'string', pattern: SITE_CODE_PATTERN, maxLength: 64 },
    },
  },
  additionalProperties: false,
} as const;

export const installerParams = {
  type: 'object',
  required: ['siteCode', 'kind'],
  properties: { siteCode: siteCodeParam.properties.siteCode, kind },
  additionalProperties: false,
} as const;

export const installerQuery = {
  type: 'object',
  properties: { channel: { ...channel, default: 'stable' }, version: versionStr },
  additionalProperties: false,
} as const;

export const releaseQuery = {
  type: 'object',
  required: ['version', 'channel'],
  properties: { version: versionStr, channel },
  additionalProperties: false,
} as const;

export const binary = (description: string) => ({
  description,
  content: { 'application/octet-stream': { schema: { type: 'string', format: 'binary' } } },
});
