import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import type { CommandModule } from 'yargs';
import { type GlobalArgs, makeContext } from '../context.ts';

interface Args extends GlobalArgs {
  out?: string;
}

export const schemaCommand: CommandModule<GlobalArgs, Args> = {
  command: 'schema',
  describe: 'Print (or write with --out) the JSON Schema of signet.config.yaml for editors',
  builder: (y) => y.option('out', { type: 'string', describe: 'Write the schema to this file' }),
  handler: async (args) => {
    const ctx = makeContext(args);
    const { jsonSchema } = await import('../../lib/config/schema.ts');
    const text = `${JSON.stringify(jsonSchema(), null, 2)}\n`;
    if (args.out) {
      const out = resolve(ctx.cwd, args.out);
      mkdirSync(dirname(out), { recursive: true });
      writeFileSync(out, text);
      ctx.emit({ written: out }, `wrote ${out}`);
    } else process.stdout.write(text);
  },
};
