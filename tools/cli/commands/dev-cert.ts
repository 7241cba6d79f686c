import type { CommandModule } from 'yargs';
import { type GlobalArgs, makeContext } from '../context.ts';

interface Args extends GlobalArgs {
  out: string;
  name?: string;
  days: number;
  force?: boolean;
}

export const devCertCommand: CommandModule<GlobalArgs, Args> = {
  command: 'dev-cert',
  describe: 'Make a throwaway CA, code-signing certificate and TSA certificate (NOT FOR RELEASE)',
  builder: (y) =>
    y
      .option('out', { type: 'string', default: '.signet/dev-cert', describe: 'Directory for the PKI files' })
      .option('name', { type: 'string', describe: 'Name in the subjects (default "Signet DEV")' })
      .option('days', { type: 'number', default: 30, describe: 'Validity' })
      .option('force', { type: 'boolean', default: false, describe: 'Replace an existing dev PKI in --out' }),
  handler: async (args) => {
    const ctx = makeContext(args);
    const { resolve, relative } = await import('node:path');
    const { existsSync } = await import('node:fs');
    const { makeDevCert } = await import('../../lib/sign/devcert.ts');
    const { logger } = await import('../../lib/log.ts');
    const YAML = (await import('yaml')).default;
    const dir = resolve(ctx.cwd, args.out);
    const exists = existsSync(resolve(dir, 'leaf.pem'));
    const dev = await makeDevCert(dir, {
      days: args.days,
      reuse: exists && !args.force,
      ...(args.name ? { name: args.name } : {}),
    });
    const rel = (p: string) => relative(ctx.cwd, p) || '.';
    const profile = {
      ...dev.profile,
      cert: rel(dev.cert),
      key: rel(dev.key),
      verify: { ...dev.profile.verify, caFile: rel(dev.caCert), tsaCaFile: rel(dev.caCert) },
    };
    logger.warn('dev certificates are NOT FOR RELEASE: never trust this CA outside demos and tests');
    const human = [
      `${exists && !args.force ? 'reusing' : 'created'} dev PKI in ${rel(dir)}`,
      `  CA           ${rel(dev.caCert)}`,
      `  chain / key  ${rel(dev.cert)} / ${rel(dev.key)}`,
      `  TSA          ${rel(dev.tsaCert)} / ${rel(dev.tsaKey)}`,
      `  subject      ${dev.subject}`,
      `  leaf sha256  ${dev.leafSha256}`,
      '',
      'Add to signet.config.yaml:',
      YAML.stringify({ signing: { profiles: { dev: profile } } }).replace(/^/gm, '  '),
    ].join('\n');
    ctx.emit({ ...dev, profile }, human);
  },
};
