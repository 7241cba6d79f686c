import type { CommandModule } from 'yargs';
import { type GlobalArgs, makeContext } from '../context.ts';

interface Args extends GlobalArgs {
  out: string;
  installers: boolean;
  force: boolean;
}

export const demoCommand: CommandModule<GlobalArgs, Args> = {
  command: 'demo',
  describe:
    'Run the whole pipeline on embedded defaults: demo repo → stable/beta plans and changelog → dev-signed agent → per-site installers → release in a local folder',
  builder: (y) =>
    y
      .option('out', {
        type: 'string',
        default: 'demo-out',
        describe:
          'Output folder (replaced when an earlier demo made it; another non-empty folder is refused)',
      })
      .option('force', {
        type: 'boolean',
        default: false,
        describe: 'Replace a non-empty --out folder the demo did not make (everything in it is deleted)',
      })
      .option('installers', {
        type: 'boolean',
        default: true,
        describe: 'Build the per-site installers (--no-installers to skip)',
      }),
  handler: async (args) => {
    const ctx = makeContext(args);
    const { resolve } = await import('node:path');
    const { runDemo } = await import('../../lib/demo/run.ts');
    const { logger } = await import('../../lib/log.ts');
    const started = performance.now();
    const result = await runDemo({
      out: resolve(ctx.cwd, args.out),
      installers: args.installers,
      force: args.force,
      onLine: (line) => (ctx.json ? logger.info(line) : process.stdout.write(`${line}\n`)),
    });
    ctx.emit(
      result,
      `\ndemo finished in ${((performance.now() - started) / 1000).toFixed(1)} s — everything is in ${result.out}`,
    );
  },
};
