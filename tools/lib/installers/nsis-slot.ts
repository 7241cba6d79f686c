/**
 * The NSIS side of incremental assembly (nsis-incremental.ts: a stub per release, the site's
 * data appended as an overlay inside the signed range), loaded when that module is present; without
 * it every exe is built in full.
 */
export interface NsisStub {
  path: string;
  sha256: string;
  maxOverlayBytes: number;
  key: string;
}

export interface NsisIncremental {
  // biome-ignore lint/suspicious/noExplicitAny: the module's own option type (it may be absent)
  buildNsisStub(o: { shared: any; work: string; runner?: unknown }): Promise<NsisStub | undefined>;
  assembleNsisSite(stub: NsisStub, siteJson: Buffer, out: string): Promise<void>;
  readNsisOverlay(file: string): Buffer | undefined;
}

let loaded: Promise<NsisIncremental | undefined> | undefined;

/** The module, or undefined when this build of Signet does not have it. */
export function loadNsisIncremental(): Promise<NsisIncremental | undefined> {
  loaded ??= (async () => {
    const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
    try {
      const m = (await import(
        new URL(`./nsis-incremental${ext}`, import.meta.url).href
      )) as Partial<NsisIncremental>;
      return m.buildNsisStub && m.assembleNsisSite && m.readNsisOverlay ? (m as NsisIncremental) : undefined;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ERR_MODULE_NOT_FOUND' || code === 'ERR_UNSUPPORTED_ESM_URL_SCHEME') return undefined;
      throw e;
    }
  })();
  return loaded;
}
