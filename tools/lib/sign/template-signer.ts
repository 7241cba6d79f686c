/**
 * The fast path of a batch: after osslsigncode signed one PE of a profile, the next ones are
 * signed in-process from that signature (template-signing.ts), each with its own digest, program
 * name, signing time, signature and RFC 3161 timestamp — no osslsigncode run, no re-read of the
 * bytes a release's files share (their digest state is kept per shared prefix). Every file it
 * writes is verified by the frame exactly as osslsigncode's (osslsigncode verify, chain, pins,
 * timestamp policy). Any doubt — a template Signet cannot reproduce, a key it cannot load, a
 * key or certificate file that changed, a nested signature — means osslsigncode signs the file.
 * `SIGNET_TEMPLATE_SIGNING=0` turns the fast path off.
 */
import { createHash, type KeyObject } from 'node:crypto';
import { statSync } from 'node:fs';
import { logger } from '../log.ts';
import { readPeSignature } from './der.ts';
import type { ProduceInput } from './frame.ts';
import type { TimestampPlan } from './osslsigncode.ts';
import { type PeDigestState, peImageDigest, pePrefixState, writeSignedPe } from './pe-image.ts';
import { readTemplate, type SignatureTemplate, signFromTemplate } from './template-signing.ts';
import { timestampSignature } from './tsp.ts';

/** The key of a profile in memory, or why the fast path cannot have it. */
export type LoadedKey = { key: KeyObject } | { refused: string };

export interface TemplateSignerOptions {
  /** Profile digest (sha256, …). */
  digest: string;
  /** Product URL (`-i`), part of the program info. */
  url: string | undefined;
  /** Loads the profile's private key (once per template). */
  loadKey(): Promise<LoadedKey>;
  /** Files whose change (key rotated on disk) invalidates the template. */
  files(): string[];
  env: NodeJS.ProcessEnv;
}

interface Learned {
  template: SignatureTemplate;
  key: KeyObject;
  identity: string;
}

const PREFIXES = 4;

function identityOf(files: string[]): string {
  return files
    .map((f) => {
      try {
        const s = statSync(f);
        return `${f}:${s.ino}:${s.size}:${s.mtimeMs}`;
      } catch {
        return `${f}:missing`;
      }
    })
    .join('|');
}

export class TemplateSigner {
  private learned: Learned | undefined;
  private learning = false;
  private refusedWhy: string | undefined;
  private readonly prefixes = new Map<string, { id: string; state: PeDigestState }>();
  readonly enabled: boolean;
  private readonly o: TemplateSignerOptions;

  constructor(o: TemplateSignerOptions) {
    this.o = o;
    this.enabled = o.env['SIGNET_TEMPLATE_SIGNING'] !== '0';
  }

  /** The template, when it can sign `p` (a PE, not nested) and its key files are unchanged. */
  private ready(p: ProduceInput): Learned | undefined {
    const l = this.learned;
    if (!l || p.nest || /\.msi$/i.test(p.output)) return undefined;
    if (identityOf(this.o.files()) !== l.identity) {
      logger.debug(
        'template signing: the key or certificate files changed; osslsigncode signs the next file',
      );
      this.learned = undefined;
      return undefined;
    }
    return l;
  }

  /** The digest state of a shared prefix file, computed once per file version. */
  private prefixState(path: string | undefined): PeDigestState | undefined {
    if (!path) return undefined;
    let id: string;
    try {
      const s = statSync(path);
      id = `${s.ino}:${s.size}:${s.mtimeMs}`;
    } catch {
      return undefined;
    }
    const hit = this.prefixes.get(path);
    if (hit?.id === id && hit.state.algorithm === this.o.digest) return hit.state;
    const state = pePrefixState(path, this.o.digest);
    if (!state) return undefined;
    this.prefixes.delete(path);
    this.prefixes.set(path, { id, state });
    while (this.prefixes.size > PREFIXES) this.prefixes.delete(this.prefixes.keys().next().value as string);
    return state;
  }

  /**
   * Signs `p` from the template when it can (true); false when osslsigncode must sign it. Errors
   * of the signing itself (a TSA that never answers) are thrown like osslsigncode's.
   */
  async sign(p: ProduceInput, plan: TimestampPlan | undefined): Promise<boolean> {
    if (!this.enabled) return false;
    const l = this.ready(p);
    if (!l) return false;
    const d = peImageDigest(p.input, this.o.digest, this.prefixState(p.prefix));
    if (!d) return false;
    const prepared = signFromTemplate(l.template, { digest: d.digest, description: p.description }, l.key);
    const token = plan
      ? await timestampSignature(
          plan,
          this.o.digest,
          createHash(this.o.digest).update(prepared.signature).digest(),
        )
      : undefined;
    writeSignedPe(p.input, p.output, d, prepared.finish(token));
    return true;
  }

  /**
   * After osslsigncode signed `p`: take its signature as the template if none is held yet. Never
   * throws; a refusal is logged once at debug level.
   */
  async learn(p: ProduceInput): Promise<void> {
    if (!this.enabled || this.learned || this.learning || p.nest || this.refusedWhy) return;
    if (/\.msi$/i.test(p.output)) return;
    this.learning = true;
    try {
      const identity = identityOf(this.o.files());
      const d = peImageDigest(p.input, this.o.digest, this.prefixState(p.prefix));
      if (!d) return;
      const sig = readPeSignature(p.output);
      if (sig.kind !== 'signed') return;
      const key = await this.o.loadKey();
      if ('refused' in key) return this.refuse(key.refused);
      const r = readTemplate(sig.pkcs7, {
        algorithm: this.o.digest,
        digest: d.digest,
        description: p.description,
        url: this.o.url,
        key: key.key,
      });
      if ('refused' in r) return this.refuse(r.refused);
      this.learned = { template: r.template, key: key.key, identity };
      logger.debug('template signing: further files of this profile are signed in-process');
    } catch (e) {
      this.refuse((e as Error).message);
    } finally {
      this.learning = false;
    }
  }

  private refuse(why: string): void {
    this.refusedWhy = why;
    logger.debug(`template signing is off for this profile: ${why}`);
  }
}
