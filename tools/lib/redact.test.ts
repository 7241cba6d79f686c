import { afterEach, describe, expect, it } from 'vitest';
import { clearSecrets, knownSecretCount, redact, registerSecret } from './redact.ts';

afterEach(() => clearSecrets());

const secretOf = (i: number) => `canary-${i.toString(36).padStart(4, '0')}-${(i * 7919).toString(16)}`;

describe('the redactor', () => {
  it('5,000 registered secrets: every one is masked, the text around them kept', () => {
    for (let i = 0; i < 5_000; i++) registerSecret(secretOf(i));
    expect(knownSecretCount()).toBe(5_000 * 2); // + the base64 variant
    const picks = [0, 1, 999, 2_500, 4_998, 4_999];
    const text = picks.map((i) => `<${secretOf(i)}>`).join(' and ');
    expect(redact(text)).toBe(picks.map(() => '<***>').join(' and '));
    expect(redact(`b64 ${Buffer.from(secretOf(42)).toString('base64')} end`)).toBe('b64 *** end');
    expect(redact('canary-zzzz-not-registered')).toBe('canary-zzzz-not-registered');
  });

  it('the longest secret wins where secrets share a start', () => {
    registerSecret('abcd1234');
    registerSecret('abcd1234WXYZ');
    expect(redact('[abcd1234WXYZ] [abcd1234]')).toBe('[***] [***]');
  });

  it('overlapping secrets are masked as the union of their spans (nothing of either shows)', () => {
    registerSecret('alpha-bravo');
    registerSecret('bravo-charlie');
    expect(redact('x alpha-bravo-charlie y')).toBe('x *** y');
    registerSecret('lie-delta');
    expect(redact('alpha-bravo-charlie-delta!')).toBe('***!');
    // one secret inside another
    registerSecret('1234567890');
    registerSecret('4567');
    expect(redact('a1234567890b 4567')).toBe('a***b ***');
  });

  it('regular-expression characters are literal', () => {
    const nasty = 'a.b*c+d?(e)[f]{g}|h^$\\i';
    registerSecret(nasty);
    expect(redact(`k=${nasty};`)).toBe('k=***;');
    expect(redact('k=aXb*c+d?(e)[f]{g}|h^$\\i;')).toBe('k=aXb*c+d?(e)[f]{g}|h^$\\i;');
    expect(redact('$& $1 $$')).toBe('$& $1 $$');
    registerSecret('$&-$1-$$');
    expect(redact('v=$&-$1-$$.')).toBe('v=***.');
  });

  it('a secret next to a combining mark, a zero-width joiner or inside a surrogate pair is still masked', () => {
    registerSecret('s3cr3t-token');
    expect(redact('x s3cr3t-token\u0301 y')).toBe('x ***\u0301 y');
    expect(redact('s3cr3t-token\u200d!')).toBe('***\u200d!');
    expect(redact('🦄s3cr3t-token🦄')).toBe('🦄***🦄');
  });

  it('registrations between redactions take effect at once; clearSecrets forgets', () => {
    registerSecret('first-secret');
    expect(redact('first-secret second-secret')).toBe('*** second-secret');
    registerSecret('second-secret');
    expect(redact('first-secret second-secret')).toBe('*** ***');
    clearSecrets();
    expect(redact('first-secret')).toBe('first-secret');
  });
});
