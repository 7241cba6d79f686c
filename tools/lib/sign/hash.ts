/**
 * File SHA-256 for the signing hot path (exec/spawn-helper.ts: 1 MiB reads into a reused buffer),
 * here or — `describeArtifactOffThread` — on the spawn helper's core while a batch holds it.
 */
import { type Artifact, artifactKind } from '../artifact.ts';
import { sha256File } from '../exec/runner.ts';
import { type KnownPrefix, sha256FileSync } from '../exec/spawn-helper.ts';

export { sha256FileSync };

export function describeArtifactFast(path: string): Artifact {
  const { sha256, size } = sha256FileSync(path);
  return { path, kind: artifactKind(path), sha256, size };
}

/** With `prefix`, the file's start is compared with that file's, and not hashed again when equal. */
export async function describeArtifactOffThread(path: string, prefix?: KnownPrefix): Promise<Artifact> {
  const { sha256, size, shared } = await sha256File(path, prefix);
  return { path, kind: artifactKind(path), sha256, size, ...(shared ? { sharedPrefix: shared } : {}) };
}
