/**
 * Ctrl-C and SIGTERM during a release: the handler only records the signal (a running git child
 * is left to finish — with Ctrl-C the terminal sends it the signal too); the release checks at
 * each step boundary and, when a signal came, rolls back what it made and then re-raises the
 * signal (default exit status, as signing does in ../sign/cleanup.ts). Further signals during the
 * rollback are absorbed: the rollback is a handful of git calls. On a plain `exit` the lock is
 * still released synchronously.
 *
 * Test-only hook (documented in docs/versioning.md as such): with SIGNET_TEST_PAUSE_AT=<step> and
 * SIGNET_TEST_PAUSE_FILE=<path>, the release writes `<step> <pid>` to that file when it reaches
 * the step and waits until a signal comes or the file is removed (at most 60 s), so tests can
 * signal at a named point. Steps: after-lock, after-write, after-add, after-commit, after-tag.
 */
import { existsSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';

export const PAUSE_STEPS = ['after-lock', 'after-write', 'after-add', 'after-commit', 'after-tag'] as const;
export type PauseStep = (typeof PAUSE_STEPS)[number];

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

export class Interrupted extends Error {
  readonly signal: NodeJS.Signals;
  constructor(signal: NodeJS.Signals) {
    super(`interrupted by ${signal}`);
    this.signal = signal;
  }
}

export interface Guard {
  /** The signal received, if any. */
  readonly signal: NodeJS.Signals | undefined;
  /** Throws Interrupted when a signal came; honours the test pause hook. */
  step(name: PauseStep): Promise<void>;
  /** Removes the handlers; with `reraise`, re-sends the received signal to this process. */
  close(reraise: boolean): void;
}

export function guardSignals(onExit: () => void, env: NodeJS.ProcessEnv = process.env): Guard {
  let received: NodeJS.Signals | undefined;
  const onSignal = (s: NodeJS.Signals) => {
    received ??= s;
  };
  for (const s of SIGNALS) process.on(s, onSignal);
  process.on('exit', onExit);
  let open = true;
  const check = () => {
    if (received) throw new Interrupted(received);
  };
  return {
    get signal() {
      return received;
    },
    async step(name) {
      check();
      const file = env['SIGNET_TEST_PAUSE_FILE'];
      if (env['SIGNET_TEST_PAUSE_AT'] !== name || !file) return;
      writeFileSync(file, `${name} ${process.pid}\n`);
      for (let i = 0; i < 3000 && !received && existsSync(file); i++) await sleep(20);
      check();
    },
    close(reraise) {
      if (!open) return;
      open = false;
      for (const s of SIGNALS) process.off(s, onSignal);
      process.off('exit', onExit);
      if (reraise && received) process.kill(process.pid, received);
    },
  };
}
