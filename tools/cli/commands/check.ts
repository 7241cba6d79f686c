import type { CommandModule } from 'yargs';
import { type GlobalArgs, makeContext } from '../context.ts';

export const checkCommand: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'check',
  describe:
    'Check this repository: the config, every signing profile (files, env:/file: secrets), the tools its features need, the manifests',
  builder: (y) => y,
  handler: async (args) => {
    const ctx = makeContext(args);
    const { runCheck, checkError, formatCheck } = await import('../../lib/project/check.ts');
    const report = await runCheck({ cwd: ctx.cwd, configPath: ctx.configPath });
    const error = checkError(report);
    // a failure is one coded error (its details carry the report); the table goes to stdout first
    if (!error || !ctx.json) ctx.emit(report, formatCheck(report));
    if (error) throw error;
  },
};
