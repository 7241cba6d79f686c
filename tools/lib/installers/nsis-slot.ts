/**
 * The NSIS side of incremental assembly (nsis-incremental.ts: a stub per release, the site's
 * data appended as an overlay inside the signed range). A static import, so bundles (the actions)
 * and the built package carry it too.
 */
import * as nsisIncremental from './nsis-incremental.ts';

export type { NsisStub } from './nsis-incremental.ts';

export type NsisIncremental = typeof nsisIncremental;

/** The module (kept as a loader so a build without it could fall back to full builds). */
export async function loadNsisIncremental(): Promise<NsisIncremental | undefined> {
  return nsisIncremental;
}
