/**
 * A process-wide set of known secrets. Everything Signet prints, logs, throws or writes as a
 * report goes through `redact`, which replaces every registered secret (and its common encodings)
 * with `***`. Secrets enter the set when they are resolved (see secrets.ts), before any use.
 */
const secrets = new Set<string>();
let pattern: RegExp | undefined;

const MASK = '***';

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function variants(secret: string): string[] {
  const out = new Set<string>([secret]);
  out.add(encodeURIComponent(secret));
  out.add(JSON.stringify(secret).slice(1, -1));
  out.add(Buffer.from(secret, 'utf8').toString('base64'));
  const trimmed = secret.trim();
  if (trimmed) out.add(trimmed);
  return [...out].filter((v) => v.length >= 4);
}

/** Registers a secret so that it is masked everywhere from now on. Short values (< 4 chars) are refused by callers. */
export function registerSecret(secret: string | undefined | null): void {
  if (!secret || secret.length < 4) return;
  let changed = false;
  for (const v of variants(secret)) {
    if (!secrets.has(v)) {
      secrets.add(v);
      changed = true;
    }
  }
  if (changed) {
    const sorted = [...secrets].sort((a, b) => b.length - a.length).map(escapeRegExp);
    pattern = new RegExp(sorted.join('|'), 'g');
  }
}

/** `scheme://user:password@host` — the userinfo of any URL is a credential, registered or not. */
const USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#@'"<>]+@/gi;

export function redact(text: string): string {
  if (!text) return text;
  const scrubbed = text.includes('@') ? text.replace(USERINFO, `$1${MASK}@`) : text;
  return pattern ? scrubbed.replace(pattern, MASK) : scrubbed;
}

/** For tests: forget every registered secret. */
export function clearSecrets(): void {
  secrets.clear();
  pattern = undefined;
}

export function knownSecretCount(): number {
  return secrets.size;
}
