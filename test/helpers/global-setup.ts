/** Runs once before the test files: make git usable in a bare CI environment. */
export default function setup(): void {
  process.env['GIT_AUTHOR_NAME'] ??= 'Signet Test';
  process.env['GIT_AUTHOR_EMAIL'] ??= 'test@signet.invalid';
  process.env['GIT_COMMITTER_NAME'] ??= 'Signet Test';
  process.env['GIT_COMMITTER_EMAIL'] ??= 'test@signet.invalid';
  process.env['GIT_CONFIG_NOSYSTEM'] = '1';
}
