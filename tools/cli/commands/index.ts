/**
 * Every command of the CLI. Each module keeps its top level light (yargs builder only) and
 * imports the core library inside its handler, so `signet version` does not load the signing
 * or forge code.
 */
import type { CommandModule } from 'yargs';
import { schemaCommand } from './schema.ts';

// biome-ignore lint/suspicious/noExplicitAny: yargs command modules have heterogeneous argument types
export const commands: CommandModule<any, any>[] = [schemaCommand];
