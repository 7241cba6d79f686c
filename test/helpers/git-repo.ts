/**
 * Temporary git repositories for tests: real git, deterministic dates, one method per action
 * a test needs (commit, tag, branch, merge, revert). Synchronous so that test bodies read as
 * the history they build.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { tempDir } from './tmp.ts';

const BASE_TIME = 1_700_000_000;

export interface RepoOptions {
  /** Files of the first commit (path → content). */
  files?: Record<string, string>;
  /** Message of the first commit (default "chore: initial commit"). */
  message?: string;
  /** Initial branch name (default main). */
  branch?: string;
}

export class TestRepo {
  readonly dir: string;
  private clock = 0;

  constructor(dir: string) {
    this.dir = dir;
  }

  /** A fresh repository with one commit. */
  static create(options: RepoOptions = {}): TestRepo {
    const repo = TestRepo.empty(options.branch);
    repo.commit(options.message ?? 'chore: initial commit', options.files ?? { 'README.md': '# test\n' });
    return repo;
  }

  /** A repository without commits. */
  static empty(branch = 'main'): TestRepo {
    const repo = new TestRepo(tempDir('signet-repo-'));
    repo.git('init', '-q', '-b', branch);
    repo.git('config', 'user.name', 'Signet Test');
    repo.git('config', 'user.email', 'test@signet.invalid');
    repo.git('config', 'commit.gpgsign', 'false');
    repo.git('config', 'tag.gpgsign', 'false');
    return repo;
  }

  /** A bare repository (a local "remote"). */
  static bare(): TestRepo {
    const repo = new TestRepo(tempDir('signet-remote-'));
    repo.git('init', '-q', '--bare');
    return repo;
  }

  private env(): NodeJS.ProcessEnv {
    const t = `${BASE_TIME + this.clock * 60} +0000`;
    return {
      ...process.env,
      GIT_AUTHOR_DATE: t,
      GIT_COMMITTER_DATE: t,
      GIT_AUTHOR_NAME: 'Signet Test',
      GIT_AUTHOR_EMAIL: 'test@signet.invalid',
      GIT_COMMITTER_NAME: 'Signet Test',
      GIT_COMMITTER_EMAIL: 'test@signet.invalid',
      GIT_CONFIG_NOSYSTEM: '1',
    };
  }

  git(...args: string[]): string {
    return execFileSync('git', args, {
      cwd: this.dir,
      env: this.env(),
      encoding: 'utf8',
      stdio: 'pipe',
    }).replace(/\n$/, '');
  }

  /** Runs git with raw bytes on stdin (e.g. a non-UTF-8 message). */
  gitInput(input: Buffer | string, ...args: string[]): string {
    return execFileSync('git', args, {
      cwd: this.dir,
      env: this.env(),
      input,
      encoding: 'utf8',
      stdio: 'pipe',
    }).trim();
  }

  write(path: string, content: string | Buffer): void {
    const abs = join(this.dir, path);
    mkdirSync(dirname(abs), { recursive: true });
    writeFileSync(abs, content);
  }

  /** Commits the given files (or an empty commit) and returns its id. */
  commit(message: string, files?: Record<string, string>): string {
    this.clock++;
    if (files && Object.keys(files).length) {
      for (const [p, c] of Object.entries(files)) this.write(p, c);
      this.git('add', '--', ...Object.keys(files));
      this.git('commit', '-q', '--no-verify', '-m', message);
    } else {
      this.git('commit', '-q', '--no-verify', '--allow-empty', '-m', message);
    }
    return this.head();
  }

  /** Commits a message given as bytes (for encodings tests). */
  commitBytes(message: Buffer): string {
    this.clock++;
    this.gitInput(message, 'commit', '-q', '--no-verify', '--allow-empty', '-F', '-');
    return this.head();
  }

  /**
   * Writes a commit object byte for byte (git commit would re-encode an invalid message), on top
   * of HEAD, with an optional `encoding` header.
   */
  commitRaw(message: Buffer, encoding?: string): string {
    this.clock++;
    const tree = this.git('rev-parse', 'HEAD^{tree}');
    const who = `Signet Test <test@signet.invalid> ${BASE_TIME + this.clock * 60} +0000`;
    const header = `tree ${tree}\nparent ${this.head()}\nauthor ${who}\ncommitter ${who}\n${encoding ? `encoding ${encoding}\n` : ''}\n`;
    const sha = this.gitInput(
      Buffer.concat([Buffer.from(header), message]),
      'hash-object',
      '-t',
      'commit',
      '-w',
      '--stdin',
    );
    this.git('update-ref', 'HEAD', sha);
    return sha;
  }

  head(): string {
    return this.git('rev-parse', 'HEAD');
  }

  /** Lightweight tag by default; annotated with `{ annotated: true }`. */
  tag(name: string, options: { at?: string; annotated?: boolean } = {}): void {
    const args = options.annotated ? ['tag', '-a', '-m', name, name] : ['tag', name];
    if (options.at) args.push(options.at);
    this.git(...args);
  }

  branch(name: string, from?: string): void {
    this.git('checkout', '-q', '-b', name, ...(from ? [from] : []));
  }

  checkout(ref: string): void {
    this.git('checkout', '-q', ref);
  }

  /** A merge commit (always, --no-ff) of `branch` into the current branch. */
  merge(branch: string, message = `Merge branch '${branch}'`): string {
    this.clock++;
    this.git('merge', '-q', '--no-ff', '-m', message, branch);
    return this.head();
  }

  /** `git revert` of a commit (message `Revert "…"` + `This reverts commit <sha>.`). */
  revert(sha: string): string {
    this.clock++;
    this.git('revert', '--no-edit', sha);
    return this.head();
  }

  tags(): string[] {
    return this.git('tag', '--list').split('\n').filter(Boolean);
  }

  /** Commit id a ref points at (peeled), or undefined. */
  rev(ref: string): string | undefined {
    try {
      return this.git('rev-parse', '--verify', '-q', `${ref}^{commit}`);
    } catch {
      return undefined;
    }
  }

  status(): string {
    return this.git('status', '--porcelain');
  }
}
