import { dirname } from 'node:path';
import type { CommandModule } from 'yargs';
import { type GlobalArgs, makeContext } from '../context.ts';

interface Args extends GlobalArgs {
  concurrency?: number;
}

export const workerCommand: CommandModule<GlobalArgs, Args> = {
  command: 'worker',
  describe:
    'Build site installers from the service’s queue (BullMQ on Redis: service.queue), over the shared records (service.database) and blobs (service.data)',
  builder: (y) =>
    y.option('concurrency', {
      type: 'number',
      describe: 'Site jobs at once (default: service.buildConcurrency, then cores)',
    }),
  handler: async (args) => {
    const ctx = makeContext(args);
    const { logger } = await import('../../lib/log.ts');
    const { createWorker } = await import('../../lib/app/service/index.ts');
    const loaded = ctx.config();
    const worker = await createWorker({
      config: loaded.config,
      baseDir: loaded.path ? dirname(loaded.path) : ctx.cwd,
      log: (level, message) => logger[level](message),
      ...(args.concurrency ? { concurrency: args.concurrency } : {}),
    });
    logger.info(`worker ${worker.id} ready`);
    await new Promise<void>((resolve) => {
      const stop = (signal: NodeJS.Signals) => {
        logger.info(`worker ${worker.id}: ${signal}, finishing running jobs`);
        worker.close().finally(resolve);
      };
      process.once('SIGTERM', stop);
      process.once('SIGINT', stop);
    });
  },
};
