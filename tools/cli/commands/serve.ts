/**
 * `signet serve`: the service for the vendor's server (HTTP over the service use cases), and its
 * admin commands: `serve token create|list|revoke`, `serve openapi`. The library is imported
 * inside the handlers so the CLI loads without the service's dependencies.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { dirname, resolve } from 'node:path';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import type { ServiceApi } from '../../lib/app/service/types.ts';
import { SignetError } from '../../lib/errors.ts';
import type { ServiceConfig } from '../../lib/service-store/config.ts';
import { type CliContext, type GlobalArgs, makeContext } from '../context.ts';

interface ServeArgs extends GlobalArgs {
  dev?: boolean;
  listen?: string;
  behindProxy?: boolean;
  dir?: string;
}

interface TokenCreateArgs extends GlobalArgs {
  name: string;
  scope: string[];
  expires?: string;
}

const LOOPBACK_NAMES = new Set(['localhost', 'ip6-localhost']);

/** `HOST:PORT` (`[::1]:8750` for IPv6) → host and port. */
export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(listen);
  const port = m ? Number(m[3]) : Number.NaN;
  if (!m || port > 65535)
    throw new SignetError('E_USAGE', `--listen must be HOST:PORT (e.g. 127.0.0.1:8750), got ${listen}`);
  return { host: (m[1] ?? m[2])!, port };
}

export function isLoopback(host: string): boolean {
  if (LOOPBACK_NAMES.has(host.toLowerCase())) return true;
  if (isIP(host) === 4) return host.startsWith('127.');
  if (isIP(host) === 6) return host === '::1';
  return false;
}

/** Plain HTTP only on loopback unless a TLS proxy is in front; TLS files make any address fine. */
export function checkListenPolicy(host: string, o: { tls: boolean; behindProxy: boolean }): void {
  if (o.tls || o.behindProxy || isLoopback(host)) return;
  throw new SignetError(
    'E_SERVICE_UNSAFE_LISTEN',
    `refusing plain HTTP on ${host}: tokens and installers (which carry enrollment keys) would travel in clear`,
  );
}

/** `90d`, `12h`, `30m`, `3600s` → milliseconds. */
export function parseExpires(v: string): number {
  const m = /^(\d{1,6})([smhd])$/.exec(v);
  if (!m) throw new SignetError('E_USAGE', `--expires must be a duration such as 90d, 12h or 30m, got ${v}`);
  const unit = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 's' | 'm' | 'h' | 'd'];
  const ms = Number(m[1]) * unit;
  if (ms < 60_000) throw new SignetError('E_USAGE', '--expires must be at least a minute');
  return ms;
}

async function serviceConfig(ctx: CliContext): Promise<ServiceConfig> {
  const { serviceConfigSchema } = await import('../../lib/service-store/config.ts');
  const raw = (ctx.config().config as { service?: unknown }).service ?? {};
  const parsed = serviceConfigSchema.safeParse(raw);
  if (!parsed.success)
    throw new SignetError(
      'E_CONFIG_INVALID',
      `service: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`,
    );
  return parsed.data;
}

function baseDirOf(ctx: CliContext): string {
  const path = ctx.config().path;
  return path ? dirname(path) : ctx.cwd;
}

/** The use cases for the admin commands: no background work, no signing. */
async function adminApi(ctx: CliContext): Promise<ServiceApi> {
  const { createService } = await import('../../lib/app/service/index.ts');
  const unused = async (): Promise<never> => {
    throw new SignetError('E_INTERNAL', 'token administration does not sign');
  };
  return createService({
    config: ctx.config().config,
    baseDir: baseDirOf(ctx),
    background: false,
    signer: { profile: 'token-admin', dev: false, sign: unused, verify: unused },
  });
}

async function withAdminApi<T>(ctx: CliContext, fn: (api: ServiceApi) => Promise<T>): Promise<T> {
  const api = await adminApi(ctx);
  try {
    return await fn(api);
  } finally {
    await api.close();
  }
}

const tokenCommand: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'token <action>',
  describe: 'Manage the service’s API tokens (create prints the token once; only its hash is kept)',
  builder: (y) =>
    y
      .command<TokenCreateArgs>({
        command: 'create',
        describe: 'Create a token: --name N --scope S… [--expires 90d]',
        builder: (yy: Argv<GlobalArgs>) =>
          yy
            .option('name', {
              type: 'string',
              demandOption: true,
              describe: 'Token name (letters, digits, . _ -)',
            })
            .option('scope', {
              type: 'array',
              string: true,
              demandOption: true,
              choices: ['sites:read', 'sites:write', 'installers:read', 'releases:write', 'sign', 'admin'],
              describe: 'One or more scopes',
            })
            .option('expires', {
              type: 'string',
              describe: 'Lifetime, e.g. 90d, 12h (default: no expiry)',
            }) as Argv<TokenCreateArgs>,
        handler: async (args: ArgumentsCamelCase<TokenCreateArgs>) => {
          const ctx = makeContext(args);
          const expiresInMs = args.expires ? parseExpires(args.expires) : undefined;
          const { token, status } = await withAdminApi(ctx, (api) =>
            api.createToken({
              name: args.name,
              scopes: args.scope as never,
              ...(expiresInMs ? { expiresInMs } : {}),
            }),
          );
          // the one time the token is shown: written directly, not through the redactor
          if (ctx.json) process.stdout.write(`${JSON.stringify({ token, status }, null, 2)}\n`);
          else
            process.stdout.write(
              `${token}\n\ntoken ${status.name} (${status.id}) scopes ${status.scopes.join(', ')}${
                status.expiresAt ? `, expires ${status.expiresAt}` : ', no expiry'
              }\nThis is the only time the token is shown; store it now (only its hash is kept).\n`,
            );
        },
      })
      .command({
        command: 'list',
        describe: 'List tokens (never the tokens themselves)',
        handler: async (args: ArgumentsCamelCase<GlobalArgs>) => {
          const ctx = makeContext(args);
          const tokens = await withAdminApi(ctx, (api) => api.listTokens());
          const lines = tokens.map(
            (t) =>
              `${t.active ? 'active ' : t.revokedAt ? 'revoked' : 'expired'}  ${t.name}  ${t.id}  ${t.scopes.join(',')}  created ${t.createdAt}${t.expiresAt ? `  expires ${t.expiresAt}` : ''}${t.lastUsedAt ? `  last used ${t.lastUsedAt}` : ''}`,
          );
          ctx.emit({ tokens }, lines.length ? lines.join('\n') : 'no tokens');
        },
      })
      .command<GlobalArgs & { token: string }>({
        command: 'revoke <token>',
        describe: 'Revoke a token by name or id (it stops working at once)',
        builder: (yy: Argv<GlobalArgs>) =>
          yy.positional('token', { type: 'string', demandOption: true, describe: 'Name or id' }) as Argv<
            GlobalArgs & { token: string }
          >,
        handler: async (args: ArgumentsCamelCase<GlobalArgs & { token: string }>) => {
          const ctx = makeContext(args);
          const status = await withAdminApi(ctx, (api) => api.revokeToken(args.token));
          ctx.emit({ status }, `revoked ${status.name} (${status.id})`);
        },
      })
      .demandCommand(1, 'Name an action: create, list or revoke.'),
  handler: () => undefined,
};

const openapiCommand: CommandModule<GlobalArgs, GlobalArgs & { out?: string }> = {
  command: 'openapi',
  describe: 'Print (or write with --out) the service’s OpenAPI 3.1 document',
  builder: (y) => y.option('out', { type: 'string', describe: 'Write the document to this file' }),
  handler: async (args) => {
    const ctx = makeContext(args);
    const { openapiDocument, openapiText } = await import('../../service/openapi.ts');
    const text = openapiText(await openapiDocument());
    if (args.out) {
      const out = resolve(ctx.cwd, args.out);
      mkdirSync(dirname(out), { recursive: true });
      writeFileSync(out, text);
      ctx.emit({ written: out }, `wrote ${out}`);
    } else process.stdout.write(text);
  },
};

async function serve(args: ArgumentsCamelCase<ServeArgs>): Promise<void> {
  const ctx = makeContext(args);
  const { buildServiceApp } = await import('../../service/app.ts');
  const { logger, withLogSink } = await import('../../lib/log.ts');
  let api: ServiceApi;
  let service: ServiceConfig;
  let closeApi: () => Promise<void>;
  let adminToken: string | undefined;
  let devSite: string | undefined;
  if (args.dev) {
    const listen = args.listen ?? '127.0.0.1:8750';
    const { host, port } = parseListen(listen);
    checkListenPolicy(host, { tls: false, behindProxy: Boolean(args.behindProxy) });
    const { startDevService } = await import('../../lib/app/service/dev.ts');
    const publicUrl = `http://${host.includes(':') ? `[${host}]` : host}:${port}`;
    const dev = await startDevService({
      dir: resolve(ctx.cwd, args.dir ?? '.signet-service-dev'),
      publicUrl,
      listen,
      log: (l) => logger.info(l),
    });
    api = dev.api;
    closeApi = () => dev.close();
    service = (await import('../../lib/service-store/config.ts')).serviceConfigSchema.parse(
      (dev.config as { service?: unknown }).service ?? {},
    );
    adminToken = dev.adminToken;
    devSite = dev.sites[0];
  } else {
    service = await serviceConfig(ctx);
    const { createService } = await import('../../lib/app/service/index.ts');
    const { host } = parseListen(args.listen ?? service.listen);
    checkListenPolicy(host, {
      tls: Boolean(service.tls),
      behindProxy: Boolean(args.behindProxy || service.behindProxy),
    });
    // The service's log is the process's: written outside any per-call sink, since a build logs
    // through a sink that calls this very function (through the one logger it would recurse).
    const processSink = { write: (line: string) => logger.sink.write(line) };
    api = await createService({
      config: ctx.config().config,
      baseDir: baseDirOf(ctx),
      log: (level, message) => withLogSink(processSink, () => logger[level](message)),
    });
    closeApi = () => api.close();
  }
  const { host, port } = parseListen(args.listen ?? service.listen);
  const tls = args.dev ? undefined : service.tls;
  const base = baseDirOf(ctx);
  let app: Awaited<ReturnType<typeof buildServiceApp>>;
  try {
    app = await buildServiceApp(api, {
      ...(service.publicUrl ? { publicUrl: service.publicUrl } : {}),
      maxUploadBytes: service.maxUploadBytes,
      rateLimit: service.rateLimit,
      trustProxy: Boolean(args.behindProxy || service.behindProxy),
      logger: { level: ctx.verbose ? 'debug' : 'info' },
      ...(tls
        ? {
            https: { cert: readFileSync(resolve(base, tls.cert)), key: readFileSync(resolve(base, tls.key)) },
          }
        : {}),
    });
    await app.listen({ host, port });
  } catch (e) {
    await closeApi();
    throw e;
  }
  const url = `${tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}`;
  logger.info(
    `signet serve: listening on ${url}${args.behindProxy || service.behindProxy ? ' (behind a TLS proxy)' : ''}`,
  );
  const flags = `${process.execArgv.join(' ')} ${process.env['NODE_OPTIONS'] ?? ''}`;
  if (!adminToken && !flags.includes('--max-semi-space-size'))
    logger.info(
      'signet serve: NODE_OPTIONS=--max-semi-space-size=8 keeps the service’s memory lower (docs/service.md, “Memory”)',
    );
  if (adminToken) {
    // printed once, on stdout, for the developer who started --dev
    process.stdout.write(`admin token (shown once): ${adminToken}\n\n`);
    const { devExamples } = await import('../../lib/app/service/dev.ts');
    process.stdout.write(`${devExamples(url, devSite ?? 'ACME-HQ').join('\n')}\n`);
  }
  await new Promise<void>((done) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      logger.info(`signet serve: ${signal}, draining in-flight requests`);
      app
        .close()
        .then(() => closeApi())
        .then(
          () => done(),
          (e: unknown) => {
            logger.error(`signet serve: shutdown failed: ${(e as Error).message}`);
            done();
          },
        );
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}

export const serveCommand: CommandModule<GlobalArgs, ServeArgs> = {
  command: 'serve',
  describe: 'Run the Signet service for the vendor’s server (HTTP API; see docs/service.md)',
  builder: (y) =>
    y
      .command(tokenCommand)
      .command(openapiCommand)
      .option('dev', {
        type: 'boolean',
        default: false,
        describe: 'Quick start: dev PKI, local TSA, demo agent and sites, a printed admin token',
      })
      .option('listen', { type: 'string', describe: 'HOST:PORT (default: service.listen, 127.0.0.1:8750)' })
      .option('behind-proxy', {
        type: 'boolean',
        default: false,
        describe: 'A TLS proxy is in front: allow plain HTTP on a non-loopback address, trust X-Forwarded-*',
      })
      .option('dir', {
        type: 'string',
        describe: 'With --dev: the folder of the dev service (default .signet-service-dev)',
      }),
  handler: serve,
};
