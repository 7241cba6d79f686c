/**
 * A small logger: human messages go to stderr (stdout is for results and --json), every message
 * goes through the redactor, colour follows --no-color / NO_COLOR / TTY.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { redact } from './redact.ts';

export type Level = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface LogSink {
  write(line: string): void;
}

class Logger {
  level: Level = 'info';
  color = !process.env['NO_COLOR'] && Boolean(process.stderr.isTTY);
  sink: LogSink = { write: (line) => process.stderr.write(`${line}\n`) };

  private emit(level: Level, message: string): void {
    if (ORDER[level] < ORDER[this.level]) return;
    const text = redact(message);
    const tag = level === 'info' ? '' : `${level}: `;
    const painted =
      this.color && tag
        ? `${level === 'error' ? '\x1b[31m' : level === 'warn' ? '\x1b[33m' : '\x1b[2m'}${tag}\x1b[0m`
        : tag;
    const sink = scope.getStore();
    if (!sink) {
      this.sink.write(`${painted}${text}`);
      return;
    }
    // A scoped sink that logs through this logger again (a service log written with `logger`)
    // must not loop: inside the sink the default sink takes the line.
    scope.exit(() => sink.write(`${painted}${text}`));
  }
  debug(m: string): void {
    this.emit('debug', m);
  }
  info(m: string): void {
    this.emit('info', m);
  }
  warn(m: string): void {
    this.emit('warn', m);
  }
  error(m: string): void {
    this.emit('error', m);
  }
}

export const logger = new Logger();

/**
 * Per-call log sinks: inside `withLogSink(sink, fn)` every message the library logs — through the
 * one `logger`, however deep — goes to `sink` instead of stderr. A server runs many use cases at
 * once, each with its own sink (its request log, a build's record), without a process-wide switch.
 */
const scope = new AsyncLocalStorage<LogSink>();

export function withLogSink<T>(sink: LogSink, fn: () => T): T {
  return scope.run(sink, fn);
}
