/**
 * Every command of the CLI. Each module keeps its top level light (yargs builder only) and
 * imports the core library inside its handler, so `signet version` does not load the signing
 * or forge code.
 */
import type { CommandModule } from 'yargs';
import { changelogCommand } from './changelog.ts';
import { checkCommand } from './check.ts';
import { deliverCommand } from './deliver.ts';
import { demoCommand } from './demo.ts';
import { devCertCommand } from './dev-cert.ts';
import { doctorCommand } from './doctor.ts';
import { initCommand } from './init.ts';
import { publishCommand } from './publish.ts';
import { releaseCommand } from './release.ts';
import { schemaCommand } from './schema.ts';
import { sealCommand, unsealCommand } from './seal.ts';
import { serveCommand } from './serve.ts';
import { signCommand } from './sign.ts';
import { siteInstallersCommand } from './site-installers.ts';
import { verifyCommand } from './verify.ts';
import { versionCommand } from './version.ts';
import { workerCommand } from './worker.ts';

// biome-ignore lint/suspicious/noExplicitAny: yargs command modules have heterogeneous argument types
export const commands: CommandModule<any, any>[] = [
  initCommand,
  versionCommand,
  changelogCommand,
  releaseCommand,
  schemaCommand,
  signCommand,
  siteInstallersCommand,
  verifyCommand,
  doctorCommand,
  checkCommand,
  devCertCommand,
  publishCommand,
  deliverCommand,
  sealCommand,
  unsealCommand,
  demoCommand,
  serveCommand,
  workerCommand,
];
