import type { CommandModule } from 'yargs';
import { type GlobalArgs, makeContext } from '../context.ts';

export const doctorCommand: CommandModule<GlobalArgs, GlobalArgs> = {
  command: 'doctor',
  describe:
    'Check the external tools (osslsigncode, Java + jsign, NSIS, msitools, 7z, SoftHSM, pkcs11 engine)',
  builder: (y) => y,
  handler: async (args) => {
    const ctx = makeContext(args);
    const { runDoctor, formatDoctor } = await import('../../lib/sign/doctor.ts');
    const { EXIT } = await import('../../lib/errors.ts');
    let config: import('../../lib/config/schema.ts').SignetConfig | undefined;
    try {
      config = ctx.config().config;
    } catch {
      config = undefined; // doctor still reports the tools when the config is broken
    }
    const report = await runDoctor(config);
    ctx.emit(report, formatDoctor(report));
    if (!report.ok) process.exitCode = EXIT.environment;
  },
};
