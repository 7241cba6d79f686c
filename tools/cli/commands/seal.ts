import type { CommandModule } from 'yargs';
import { type GlobalArgs, makeContext } from '../context.ts';

interface SealArgs extends GlobalArgs {
  'public-key'?: string;
  value?: string;
  keygen?: boolean;
  'private-key-out'?: string;
  'site-code'?: string;
  'key-version'?: number;
}

export const sealCommand: CommandModule<GlobalArgs, SealArgs> = {
  command: 'seal',
  describe:
    'Seal a secret to a public key with a libsodium sealed box, for a workflow dispatch: an enrollment key with --site-code and --key-version (bound to that site), a callback token without; --keygen makes a key pair',
  builder: (y) =>
    y
      .option('public-key', { type: 'string', describe: 'base64 public key, or file:PATH holding it' })
      .option('value', {
        type: 'string',
        describe: 'The secret as env:NAME or file:PATH (default: read stdin)',
      })
      .option('keygen', { type: 'boolean', default: false, describe: 'Generate a key pair instead' })
      .option('private-key-out', {
        type: 'string',
        describe: 'With --keygen: write the private key here (mode 600); store it as a repository secret',
      })
      .option('site-code', {
        type: 'string',
        describe: 'Seal an enrollment key for this site (with --key-version): it opens only for that site',
      })
      .option('key-version', {
        type: 'number',
        describe: 'The key version the enrollment key is sealed for',
      }),
  handler: async (args) => {
    const ctx = makeContext(args);
    const { readFileSync, writeFileSync, existsSync } = await import('node:fs');
    const { resolve } = await import('node:path');
    const { SignetError } = await import('../../lib/errors.ts');
    const seal = await import('../../lib/seal/index.ts');
    if (args.keygen) {
      if (!args['private-key-out'])
        throw new SignetError(
          'E_USAGE',
          '--keygen needs --private-key-out PATH (the private key is never printed)',
        );
      const out = resolve(ctx.cwd, args['private-key-out']);
      if (existsSync(out))
        throw new SignetError('E_FILE_EXISTS', `${out} exists; refusing to overwrite a key`);
      const kp = await seal.generateSealKeyPair();
      writeFileSync(out, `${kp.privateKey}\n`, { mode: 0o600, flag: 'wx' });
      ctx.emit(
        { publicKey: kp.publicKey, privateKeyFile: out },
        `public key: ${kp.publicKey}\nprivate key written to ${out}: store it as the repository secret SIGNET_SEAL_PRIVATE_KEY, then delete the file`,
      );
      return;
    }
    const pk = args['public-key'];
    if (!pk) throw new SignetError('E_USAGE', 'seal needs --public-key (base64 or file:PATH)');
    const publicKey = pk.startsWith('file:')
      ? readFileSync(resolve(ctx.cwd, pk.slice(5)), 'utf8').trim()
      : pk;
    let value: string;
    if (args.value) {
      const { parseSecretRef, resolveSecret } = await import('../../lib/secrets.ts');
      value = resolveSecret(parseSecretRef(args.value, '--value'), '--value');
    } else {
      value = readFileSync(0, 'utf8').replace(/\r?\n$/, '');
      const { registerSecret } = await import('../../lib/redact.ts');
      registerSecret(value);
    }
    const siteCode = args['site-code'];
    const keyVersion = args['key-version'];
    if ((siteCode === undefined) !== (keyVersion === undefined))
      throw new SignetError(
        'E_USAGE',
        'an enrollment key is sealed for one site: give both --site-code and --key-version (or neither, for a callback token)',
      );
    if (siteCode !== undefined && keyVersion !== undefined) {
      const { ENROLLMENT_KEY_FORMAT, sealEnrollmentKey } = await import('../../lib/seal/enrollment.ts');
      const sealed = await sealEnrollmentKey({ siteCode, keyVersion, key: value }, publicKey);
      ctx.emit(
        { sealed, algorithm: 'crypto_box_seal', format: ENROLLMENT_KEY_FORMAT, siteCode, keyVersion },
        sealed,
      );
      return;
    }
    const sealed = await seal.seal(value, publicKey);
    ctx.emit({ sealed, algorithm: 'crypto_box_seal' }, sealed);
  },
};

interface UnsealArgs extends GlobalArgs {
  'private-key': string;
  sealed?: string;
  out?: string;
}

export const unsealCommand: CommandModule<GlobalArgs, UnsealArgs> = {
  command: 'unseal',
  describe:
    'Open a sealed box with the private key (env:NAME or file:PATH); writes the secret to --out (mode 600)',
  builder: (y) =>
    y
      .option('private-key', { type: 'string', demandOption: true, describe: 'env:NAME or file:PATH' })
      .option('sealed', {
        type: 'string',
        describe: 'The sealed value (base64), or file:PATH; default: stdin',
      })
      .option('out', { type: 'string', describe: 'Write the opened secret here (default: stdout)' }),
  handler: async (args) => {
    const ctx = makeContext(args);
    const { existsSync, readFileSync, writeFileSync } = await import('node:fs');
    const { resolve } = await import('node:path');
    const { parseSecretRef, resolveSecret } = await import('../../lib/secrets.ts');
    const { unseal } = await import('../../lib/seal/index.ts');
    const { SignetError } = await import('../../lib/errors.ts');
    const refuse = (out: string) =>
      new SignetError('E_FILE_EXISTS', `--out ${out} exists; refusing to overwrite it`, {
        details: { field: '--out', path: out },
      });
    if (args.out && existsSync(resolve(ctx.cwd, args.out))) throw refuse(resolve(ctx.cwd, args.out));
    const key = resolveSecret(parseSecretRef(args['private-key'], '--private-key'), '--private-key');
    const raw = args.sealed ?? readFileSync(0, 'utf8');
    const sealed = raw.startsWith('file:') ? readFileSync(resolve(ctx.cwd, raw.slice(5)), 'utf8') : raw;
    const value = await unseal(sealed, key);
    if (args.out) {
      const out = resolve(ctx.cwd, args.out);
      // 'wx': never overwrite (e.g. the private key file it was given), also not in a race.
      try {
        writeFileSync(out, value, { mode: 0o600, flag: 'wx' });
      } catch (e) {
        if ((e as { code?: string }).code === 'EEXIST') throw refuse(out);
        throw e;
      }
      ctx.emit({ written: out }, `wrote ${out}`);
    } else process.stdout.write(value); // deliberately not redacted: this is the requested output
  },
};
