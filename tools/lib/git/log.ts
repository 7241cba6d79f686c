/**
 * Commits, streamed: ONE `git log -z` whose output is split on NUL as it arrives, so 100,000
 * commits never sit in memory as one string. Messages are decoded as UTF-8 (git re-encodes
 * messages that declare another encoding); bytes that are not UTF-8 are replaced and reported.
 */

import { isUtf8 } from 'node:buffer';
import { spawn } from 'node:child_process';
import { SignetError } from '../errors.ts';
import { logger } from '../log.ts';
import { redact } from '../redact.ts';
import { GIT_BASE_ARGS, GIT_ENV } from './git.ts';

export interface RawCommit {
  sha: string;
  /** Parent commit ids (two or more for a merge). */
  parents: string[];
  /** Full message (subject, blank line, body, footers), trailing newlines removed. */
  message: string;
  /** The message was not valid UTF-8 (invalid bytes replaced by U+FFFD). */
  invalidUtf8?: boolean;
  /** The message was longer than MAX_MESSAGE_BYTES and was cut. */
  truncated?: boolean;
}

/** Messages above this size keep their first and last halves for analysis (footers are at the end). */
export const MAX_MESSAGE_BYTES = 256 * 1024;

const FORMAT = '--format=%H%x1f%P%x1f%B';

/** argv of the streamed `git log` (pure; unit-tested). `range` is e.g. `v1.2.0..HEAD` or `HEAD`. */
export function logArgs(range: string, paths: readonly string[] = []): string[] {
  return [
    ...GIT_BASE_ARGS,
    'log',
    '-z',
    '--no-color',
    '--no-decorate',
    '--encoding=UTF-8',
    FORMAT,
    range,
    '--',
    ...paths,
  ];
}

const decoder = new TextDecoder('utf-8');

function parseRecord(buf: Buffer): RawCommit | undefined {
  if (buf.length === 0) return undefined;
  let truncated = false;
  let body = buf;
  if (body.length > MAX_MESSAGE_BYTES + 200) {
    // Keep the head (id, parents, subject, start of the body) and the tail (the footers, where
    // BREAKING CHANGE lives), cut at line boundaries.
    const half = MAX_MESSAGE_BYTES / 2;
    let headEnd = body.lastIndexOf(10, half);
    if (headEnd < 0) headEnd = half;
    let tailStart = body.indexOf(10, body.length - half);
    if (tailStart < 0) tailStart = body.length - half;
    body = Buffer.concat([body.subarray(0, headEnd), Buffer.from('\n[…]\n'), body.subarray(tailStart)]);
    truncated = true;
  }
  const invalid = !isUtf8(body);
  const text = decoder.decode(body);
  const a = text.indexOf('\x1f');
  const b = text.indexOf('\x1f', a + 1);
  if (a < 0 || b < 0) return undefined;
  const sha = text.slice(0, a).replace(/^\n+/, '');
  const parents = b > a + 1 ? text.slice(a + 1, b).split(' ') : [];
  let end = text.length;
  while (end > b + 1 && text.charCodeAt(end - 1) === 10) end--;
  const c: RawCommit = { sha, parents, message: text.slice(b + 1, end) };
  if (invalid) c.invalidUtf8 = true;
  if (truncated) c.truncated = true;
  return c;
}

export interface StreamLogOptions {
  cwd: string;
  range: string;
  paths?: readonly string[];
  /** Called for each commit, newest first. */
  onCommit: (c: RawCommit) => void;
  timeoutMs?: number;
}

/** Streams `git log` over a range; resolves with the number of commits seen. */
export function streamLog(options: StreamLogOptions): Promise<number> {
  const { cwd, range, paths = [], onCommit, timeoutMs = 300_000 } = options;
  const args = logArgs(range, paths);
  logger.debug(`$ git ${args.join(' ')}`);
  return new Promise((resolvePromise, reject) => {
    const child = spawn('git', args, {
      cwd,
      env: { ...process.env, ...GIT_ENV },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let count = 0;
    let pending: Buffer[] = [];
    let stderr = '';
    let failed: unknown;
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    const emit = (buf: Buffer) => {
      const c = parseRecord(buf);
      if (!c) return;
      if (c.invalidUtf8)
        logger.warn(`commit ${c.sha.slice(0, 12)}: message is not valid UTF-8; invalid bytes replaced`);
      if (c.truncated)
        logger.warn(
          `commit ${c.sha.slice(0, 12)}: message larger than ${MAX_MESSAGE_BYTES} bytes; cut for analysis`,
        );
      count++;
      onCommit(c);
    };
    child.stdout.on('data', (chunk: Buffer) => {
      if (failed) return;
      try {
        let start = 0;
        let nul = chunk.indexOf(0, start);
        while (nul >= 0) {
          const piece = chunk.subarray(start, nul);
          if (pending.length) {
            pending.push(piece);
            emit(Buffer.concat(pending));
            pending = [];
          } else emit(piece);
          start = nul + 1;
          nul = chunk.indexOf(0, start);
        }
        if (start < chunk.length) pending.push(Buffer.from(chunk.subarray(start)));
      } catch (e) {
        failed = e;
        child.kill('SIGKILL');
      }
    });
    child.stderr.on('data', (chunk: Buffer) => {
      if (stderr.length < 16_384) stderr += chunk.toString('utf8');
    });
    child.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(
        e.code === 'ENOENT'
          ? new SignetError('E_TOOL_MISSING', 'git: program not found', { details: { program: 'git' } })
          : e,
      );
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (failed) return reject(failed);
      if (pending.length) emit(Buffer.concat(pending));
      if (code !== 0) {
        if (signal === 'SIGKILL' && !failed) {
          return reject(new SignetError('E_TOOL_TIMEOUT', `git log: timed out after ${timeoutMs} ms`));
        }
        return reject(
          new SignetError('E_TOOL_FAILED', `git log exited with ${code}: ${redact(stderr.trim())}`, {
            details: { command: `git ${args.join(' ')}`, exitCode: code },
          }),
        );
      }
      resolvePromise(count);
    });
  });
}

/** Collects the commits of a range into an array (newest first). */
export async function readLog(
  cwd: string,
  range: string,
  paths: readonly string[] = [],
): Promise<RawCommit[]> {
  const out: RawCommit[] = [];
  await streamLog({ cwd, range, paths, onCommit: (c) => out.push(c) });
  return out;
}
