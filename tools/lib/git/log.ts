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

const BREAKING = Buffer.from('BREAKING');
const REVERTS = Buffer.from('This reverts commit');
const BRACKET = 0x5b; // '[' of [skip ci] and friends

/**
 * One NUL-terminated record: `<sha>\x1f<parents>\x1f<message>`. With `bodies: 'needed'` the body
 * is decoded only when it can change the analysis (a BREAKING footer, a revert reference, a
 * `[skip ci]`-style marker); otherwise `message` is the subject line alone. The parsed
 * conventional fields are the same either way, and most bodies never become JS strings.
 */
export function parseRecord(buf: Buffer, bodies: 'all' | 'needed' = 'all'): RawCommit | undefined {
  let start = 0;
  while (start < buf.length && buf[start] === 10) start++;
  const a = buf.indexOf(0x1f, start);
  const b = a < 0 ? -1 : buf.indexOf(0x1f, a + 1);
  if (a < 0 || b < 0) return undefined;
  const sha = buf.toString('latin1', start, a);
  const parents = b > a + 1 ? buf.toString('latin1', a + 1, b).split(' ') : [];
  const msgStart = b + 1;
  let msgEnd = buf.length;
  while (msgEnd > msgStart && buf[msgEnd - 1] === 10) msgEnd--;
  let nl = buf.indexOf(10, msgStart);
  if (nl < 0 || nl > msgEnd) nl = msgEnd;
  let message = buf.subarray(msgStart, msgEnd);
  if (
    bodies === 'needed' &&
    nl < msgEnd &&
    buf.indexOf(BREAKING, nl) < 0 &&
    buf.indexOf(REVERTS, nl) < 0 &&
    buf.indexOf(BRACKET, nl) < 0
  ) {
    message = buf.subarray(msgStart, nl);
  }
  let truncated = false;
  if (message.length > MAX_MESSAGE_BYTES + 200) {
    // Keep the head (subject, start of the body) and the tail (the footers, where BREAKING CHANGE
    // lives), cut at line boundaries.
    const half = MAX_MESSAGE_BYTES / 2;
    let headEnd = message.lastIndexOf(10, half);
    if (headEnd < 0) headEnd = half;
    let tailStart = message.indexOf(10, message.length - half);
    if (tailStart < 0) tailStart = message.length - half;
    message = Buffer.concat([
      message.subarray(0, headEnd),
      Buffer.from('\n[…]\n'),
      message.subarray(tailStart),
    ]);
    truncated = true;
  }
  const c: RawCommit = { sha, parents, message: decoder.decode(message) };
  if (!isUtf8(message)) c.invalidUtf8 = true;
  if (truncated) c.truncated = true;
  return c;
}

export interface StreamLogOptions {
  cwd: string;
  range: string;
  paths?: readonly string[];
  /** Called for each commit, newest first. */
  onCommit: (c: RawCommit) => void;
  /** 'needed': decode a body only when it can change the analysis (see parseRecord). */
  bodies?: 'all' | 'needed';
  timeoutMs?: number;
}

/** Streams `git log` over a range; resolves with the number of commits seen. */
export function streamLog(options: StreamLogOptions): Promise<number> {
  const { cwd, range, paths = [], onCommit, timeoutMs = 300_000, bodies = 'all' } = options;
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
      const c = parseRecord(buf, bodies);
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
