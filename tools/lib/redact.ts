/**
 * A process-wide set of known secrets. Everything Signet prints, logs, throws or writes as a
 * report goes through `redact`, which replaces every registered secret (and its common encodings)
 * with `***`. Secrets enter the set when they are resolved (see secrets.ts), before any use.
 */
const secrets = new Set<string>();

const MASK = '***';

/**
 * The matcher: a trie of every registered variant over UTF-16 code units. A registration inserts
 * its variants (O(length of the secret), nothing is rebuilt: 5,000 secrets used to rebuild and
 * recompile one regular expression 5,000 times, 10.9 s), interleaved with redactions or not. Hand-written rather than a library: the maintained npm
 * Aho–Corasick (`modern-ahocorasick`) matches whole grapheme clusters only, so a secret followed by
 * a combining mark or a zero-width joiner was not found — a redaction bypass; code units have no
 * such boundary. Every occurrence is masked, overlapping ones included (the union of their spans).
 */
interface TrieNode {
  next: Map<number, TrieNode>;
  terminal: boolean;
}
let trie: TrieNode = { next: new Map(), terminal: false };

function insert(root: TrieNode, secret: string): void {
  let node = root;
  for (let i = 0; i < secret.length; i++) {
    const c = secret.charCodeAt(i);
    let child = node.next.get(c);
    if (!child) {
      child = { next: new Map(), terminal: false };
      node.next.set(c, child);
    }
    node = child;
  }
  node.terminal = true;
}

/** Replaces every span covered by a registered secret with one MASK per contiguous covered run. */
function maskSecrets(text: string, root: TrieNode): string {
  let out = '';
  let copied = 0; // text[copied, …) is not yet in `out`
  let coverStart = -1;
  let coverEnd = -1; // the current run of covered code units is [coverStart, coverEnd)
  for (let i = 0; i < text.length; i++) {
    let node = root.next.get(text.charCodeAt(i));
    if (!node) continue;
    let longest = 0;
    for (let j = i + 1; ; j++) {
      if (node.terminal) longest = j - i;
      if (j >= text.length) break;
      const child: TrieNode | undefined = node.next.get(text.charCodeAt(j));
      if (!child) break;
      node = child;
    }
    if (!longest) continue;
    if (i > coverEnd) {
      if (coverEnd >= 0) {
        out += text.slice(copied, coverStart) + MASK;
        copied = coverEnd;
      }
      coverStart = i;
    }
    coverEnd = Math.max(coverEnd, i + longest);
  }
  if (coverEnd < 0) return text;
  return `${out}${text.slice(copied, coverStart)}${MASK}${text.slice(coverEnd)}`;
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
  for (const v of variants(secret))
    if (!secrets.has(v)) {
      secrets.add(v);
      insert(trie, v);
    }
}

/** `scheme://user:password@host` — the userinfo of any URL is a credential, registered or not. */
const USERINFO = /\b([a-z][a-z0-9+.-]*:\/\/)[^\s/?#@'"<>]+@/gi;

export function redact(text: string): string {
  if (!text) return text;
  const scrubbed = text.includes('@') ? text.replace(USERINFO, `$1${MASK}@`) : text;
  if (secrets.size === 0) return scrubbed;
  return maskSecrets(scrubbed, trie);
}

/** For tests: forget every registered secret. */
export function clearSecrets(): void {
  secrets.clear();
  trie = { next: new Map(), terminal: false };
}

export function knownSecretCount(): number {
  return secrets.size;
}
