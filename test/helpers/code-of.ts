/** The SignetError code a promise rejects with, or 'resolved'; any other error is rethrown. */
import { SignetError } from '../../tools/lib/errors.ts';

export async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (e) {
    if (e instanceof SignetError) return e.code;
    throw e;
  }
  return 'resolved';
}
