/**
 * Pushing with an HTTPS token that never appears in argv, in the remote URL or in output: git
 * asks a credential helper given with `-c`, and the helper is a shell snippet that reads the
 * token from an environment variable at run time. Only the variable's NAME is in argv.
 */
import { SignetError } from '../errors.ts';
import { registerSecret } from '../redact.ts';

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export interface PushAuth {
  /** Extra `-c` arguments (before the subcommand). */
  configArgs: string[];
  /** Environment for the git process. */
  env: Record<string, string>;
  /** Whether a token is used. */
  token: boolean;
}

/**
 * Credential-helper config for a push. With no token in the environment, or a remote that is not
 * http(s), git's own configuration is used unchanged.
 */
export function pushAuth(remoteUrl: string | undefined, tokenEnv: string, env: NodeJS.ProcessEnv): PushAuth {
  if (!ENV_NAME.test(tokenEnv)) {
    throw new SignetError(
      'E_CONFIG_INVALID',
      `git.tokenEnv: "${tokenEnv}" is not an environment variable name`,
      {
        details: { field: 'git.tokenEnv' },
      },
    );
  }
  const token = env[tokenEnv];
  const base: Record<string, string> = { GIT_TERMINAL_PROMPT: '0', GIT_ASKPASS: '', SSH_ASKPASS: '' };
  if (!token || !remoteUrl || !/^https?:\/\//i.test(remoteUrl))
    return { configArgs: [], env: base, token: false };
  registerSecret(token);
  const helper =
    `!f() { test "$1" = get || return 0; ` +
    `printf 'username=%s\\npassword=%s\\n' "\${SIGNET_GIT_USERNAME:-x-access-token}" "$${tokenEnv}"; }; f`;
  return {
    // The empty helper first clears helpers from the user's config (a stored credential must not win).
    configArgs: ['-c', 'credential.helper=', '-c', `credential.helper=${helper}`],
    env: { ...base, [tokenEnv]: token },
    token: true,
  };
}

/** argv of the push (pure): `--atomic` so the commit and the tag land together or not at all. */
export function pushArgs(
  remote: string,
  refspecs: readonly string[],
  options: { force?: boolean } = {},
): string[] {
  return ['push', '--atomic', '--porcelain', ...(options.force ? ['--force'] : []), remote, ...refspecs];
}
