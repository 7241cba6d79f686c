/** The logger's per-call sinks: concurrent scopes each get their own messages, the default sink the rest. */
import { describe, expect, it } from 'vitest';
import { logger, withLogSink } from './log.ts';
import { clearSecrets, registerSecret } from './redact.ts';

describe('withLogSink', () => {
  it('routes the library’s messages to the sink of the call that logged them, redacted, across awaits', async () => {
    const a: string[] = [];
    const b: string[] = [];
    const rest: string[] = [];
    const before = logger.sink;
    logger.sink = { write: (l) => rest.push(l) };
    registerSecret('canary-log-scope-9d1e');
    try {
      const work = async (name: string) => {
        for (let i = 0; i < 3; i++) {
          await new Promise((r) => setTimeout(r, Math.random() * 5));
          logger.info(`${name} ${i} canary-log-scope-9d1e`);
        }
      };
      await Promise.all([
        withLogSink({ write: (l) => a.push(l) }, () => work('a')),
        withLogSink({ write: (l) => b.push(l) }, () => work('b')),
      ]);
      logger.info('outside');
    } finally {
      logger.sink = before;
      clearSecrets();
    }
    expect(a).toEqual(['a 0 ***', 'a 1 ***', 'a 2 ***']);
    expect(b).toEqual(['b 0 ***', 'b 1 ***', 'b 2 ***']);
    expect(rest).toEqual(['outside']);
  });

  it('a scoped sink that logs through the logger itself does not loop', () => {
    const rest: string[] = [];
    const before = logger.sink;
    logger.sink = { write: (l) => rest.push(l) };
    try {
      withLogSink({ write: (l) => logger.info(`[service] ${l}`) }, () => logger.warn('careful'));
    } finally {
      logger.sink = before;
    }
    expect(rest).toEqual(['[service] warn: careful']);
  });
});
