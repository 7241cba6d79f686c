/**
 * The fast path of a batch: after osslsigncode signed one PE (or MSI) of a profile, the next ones are
 * signed in-process from that signature (template-signing.ts), each with its own digest, program
 * name, signing time, signature and RFC 3161 timestamp — no osslsigncode run, no re-read of the
 * bytes a release's files share (their digest state is kept per shared prefix). Every file it
 * writes is verified by the frame exactly as osslsigncode's (osslsigncode verify, chain, pins,
 * timestamp policy). Any doubt — a template Signet cannot reproduce, a key it cannot load, a
 * key or certificate file that changed, a nested signature — means osslsigncode signs the file.
 * `SIGNET_TEMPLATE_SIGNING=0` turns the fast path off.
 */
import { createHash, type KeyObject } from 'node:crypto';
import { existsSync, rmSync, statSync } from 'node:fs';
import { basename } from 'node:path';
import { SignetError } from '../errors.ts';
import { logger } from '../log.ts';
import { readMsiSignature, readPeSignature } from './der.ts';
import type { ProduceInput } from './frame.ts';
import { msiImageDigest, msiSharedStreams, writeSignedMsi } from './msi-image.ts';
import type { TimestampPlan } from './osslsigncode.ts';
import { peImageDigest, pePrefixState, writeSignedPe } from './pe-image.ts';
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
}

const SHARED_STATES = 4;

/** Files signed from a template in this process, and the time it took, TSA waits left out (for benchmarks). */
export const templateSigningStats = { files: 0, ms: 0, sharedBytes: 0 };

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

type Kind = 'pe' | 'msi';

/** What differs between the two file kinds: the image digest, the writer, the signature reader. */
interface Image {
  digest: Buffer;
  /** Bytes of the digest continued from a shared state (a stub, a base MSI). */
  sharedBytes: number;
  write(output: string, pkcs7: Buffer): void;
}

export class TemplateSigner {
  private readonly learned = new Map<Kind, Learned>();
  private readonly learning = new Set<Kind>();
  private readonly refused = new Map<Kind, string>();
  private key: Promise<LoadedKey> | undefined;
  /** The key and certificate files' identity the key (and so every template) was loaded under. */
  private keyIdentity: string | undefined;
  private tsaFailed = false;
  private readonly shared = new Map<string, { id: string; state: unknown }>();
  readonly enabled: boolean;
  private readonly o: TemplateSignerOptions;

  constructor(o: TemplateSignerOptions) {
    this.o = o;
    this.enabled = o.env['SIGNET_TEMPLATE_SIGNING'] !== '0';
  }

  private kindOf(p: ProduceInput): Kind {
    return /\.msi$/i.test(p.output) ? 'msi' : 'pe';
  }

  /** The template for `p`'s kind, when there is one and the key files are unchanged. */
  private ready(p: ProduceInput): Learned | undefined {
    const kind = this.kindOf(p);
    const l = this.learned.get(kind);
    if (!l || p.nest) return undefined;
    if (identityOf(this.o.files()) !== this.keyIdentity) {
      logger.debug(
        'template signing: the key or certificate files changed; osslsigncode signs the next file',
      );
      this.learned.clear();
      this.key = undefined;
      return undefined;
    }
    return l;
  }

  /**
   * A digest state of what files share (a PE stub they start with, a base MSI they are copies
   * of), computed once per version of that file (inode, size, mtime) and `key`.
   */
  private sharedState<T>(path: string, key: string, compute: () => T | undefined): T | undefined {
    let id: string;
    try {
      const s = statSync(path);
      id = `${s.dev}:${s.ino}:${s.size}:${s.mtimeMs}:${s.ctimeMs}`;
    } catch {
      return undefined;
    }
    const k = `${key}\u0000${path}`;
    const hit = this.shared.get(k);
    if (hit?.id === id) return hit.state as T;
    const state = compute();
    if (!state) return undefined;
    this.shared.delete(k);
    this.shared.set(k, { id, state });
    while (this.shared.size > SHARED_STATES) this.shared.delete(this.shared.keys().next().value as string);
    return state;
  }

  /** The input's image digest and writer, or undefined when the in-process writer cannot take it. */
  private async image(p: ProduceInput): Promise<Image | undefined> {
    try {
      return await this.imageOf(p);
    } catch (e) {
      logger.debug(`template signing: ${(e as Error).message}; osslsigncode signs the file`);
      return undefined;
    }
  }

  private async imageOf(p: ProduceInput): Promise<Image | undefined> {
    const input = p.input;
    const algorithm = this.o.digest;
    if (this.kindOf(p) === 'msi') {
      const base = p.msiBase;
      const shared =
        base &&
        this.sharedState(base.path, `msi:${algorithm}:${JSON.stringify(base.unchanged)}`, () =>
          msiSharedStreams(base.path, algorithm, base.unchanged),
        );
      const d = await msiImageDigest(input, algorithm, shared || undefined);
      return (
        d && {
          digest: d.digest,
          sharedBytes: d.sharedBytes,
          write: (output, pkcs7) => writeSignedMsi(input, output, d, pkcs7, Boolean(p.consume)),
        }
      );
    }
    const prefix = p.prefix;
    const state =
      prefix && this.sharedState(prefix, `pe:${algorithm}`, () => pePrefixState(prefix, algorithm));
    const d = peImageDigest(input, algorithm, state || undefined);
    return (
      d && {
        digest: d.digest,
        sharedBytes: d.sharedBytes,
        write: (output, pkcs7) => writeSignedPe(input, output, d, pkcs7, Boolean(p.consume)),
      }
    );
  }

  /**
   * Signs `p` from the template when it can (true); false when osslsigncode must sign it. A
   * schedule of TSAs that all fail here hands the file (and the signer's later ones) to
   * osslsigncode, whose own client (libcurl: proxy variables, the system's CAs) decides; a write
   * that fails after the input was consumed is an error (nothing is left to sign again).
   */
  async sign(p: ProduceInput, plan: TimestampPlan | undefined): Promise<boolean> {
    if (!this.enabled || (plan && this.tsaFailed)) return false;
    const l = this.ready(p);
    if (!l) return false;
    const started = performance.now();
    const image = await this.image(p);
    if (!image) return false;
    const prepared = signFromTemplate(
      l.template,
      { digest: image.digest, description: p.description },
      l.key,
    );
    const asked = performance.now();
    let token: Buffer | undefined;
    if (plan) {
      try {
        token = await timestampSignature(
          plan,
          this.o.digest,
          createHash(this.o.digest).update(prepared.signature).digest(),
        );
      } catch (e) {
        if (!(e instanceof SignetError) || e.code !== 'E_TIMESTAMP_FAILED') throw e;
        this.tsaFailed = true;
        logger.warn(
          "timestamping from Signet failed; osslsigncode signs and stamps this profile's files from now on",
        );
        return false;
      }
    }
    const stamped = performance.now();
    try {
      image.write(p.output, prepared.finish(token));
      templateSigningStats.files++;
      templateSigningStats.sharedBytes += image.sharedBytes;
      templateSigningStats.ms += performance.now() - started - (stamped - asked);
    } catch (e) {
      rmSync(p.output, { force: true });
      if (p.consume && !existsSync(p.input))
        throw new SignetError(
          'E_SIGN_FAILED',
          `${basename(p.output)}: writing the signed file failed: ${(e as Error).message}`,
        );
      // a layout the writer does not take after all: osslsigncode signs it (this stamp is unused)
      logger.debug(`template signing: ${(e as Error).message}; osslsigncode signs the file`);
      return false;
    }
    return true;
  }

  /**
   * After osslsigncode signed `p`: take its signature as the template of its kind if none is
   * held yet. Never throws; a refusal is logged once at debug level.
   */
  async learn(p: ProduceInput): Promise<void> {
    const kind = this.kindOf(p);
    if (
      !this.enabled ||
      p.nest ||
      this.learned.has(kind) ||
      this.learning.has(kind) ||
      this.refused.has(kind)
    )
      return;
    this.learning.add(kind);
    try {
      const identity = identityOf(this.o.files());
      // the file's own digest, not one continued from a claimed shared part: a claim that does not
      // hold must cost that file, never the template of every later one
      const { prefix: _prefix, msiBase: _msiBase, ...own } = p;
      const image = await this.image(own);
      if (!image) return;
      const sig = kind === 'msi' ? readMsiSignature(p.output) : readPeSignature(p.output);
      if (sig.kind !== 'signed') return;
      if (this.keyIdentity !== identity) {
        // rotated on disk: the key is loaded again, and templates of the old one are dropped
        this.key = undefined;
        this.learned.clear();
        this.keyIdentity = identity;
      }
      this.key ??= this.o.loadKey();
      const key = await this.key;
      if ('refused' in key) return this.refuse(kind, key.refused);
      const r = readTemplate(sig.pkcs7, {
        algorithm: this.o.digest,
        digest: image.digest,
        description: p.description,
        url: this.o.url,
        key: key.key,
      });
      if ('refused' in r) return this.refuse(kind, r.refused);
      this.learned.set(kind, { template: r.template, key: key.key });
      logger.debug(
        `template signing: further ${kind === 'msi' ? 'MSI' : 'PE'} files of this profile are signed in-process`,
      );
    } catch (e) {
      this.refuse(kind, (e as Error).message);
    } finally {
      this.learning.delete(kind);
    }
  }

  private refuse(kind: Kind, why: string): void {
    this.refused.set(kind, why);
    logger.debug(
      `template signing is off for ${kind === 'msi' ? 'MSI' : 'PE'} files of this profile: ${why}`,
    );
  }
}
