/**
 * The embedded default forge: a release is a folder `<root>/<tag>/` holding the assets, NOTES.md
 * and release.json. It implements the same Forge contract, so `dir:` gets the same plan, temp-name
 * replacement, verify gate and convergence as GitHub and Gitea, with no server and no token.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { SignetError } from '../errors.ts';
import type {
  CreateReleaseInput,
  Forge,
  ReleaseFields,
  RemoteAsset,
  RemoteRelease,
  UploadedAsset,
  UploadInput,
} from './types.ts';

export const DIR_RESERVED = new Set(['release.json', 'NOTES.md']);

interface ReleaseJson {
  schema: 'signet.release/v1';
  tag: string;
  title: string;
  draft: boolean;
  prerelease: boolean;
  createdAt: string;
  publishedAt: string | null;
  notes: 'NOTES.md';
  assets: { name: string; size: number; sha256: string | null }[];
}

async function hashFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export class DirForge implements Forge {
  readonly kind = 'dir' as const;
  readonly description: string;
  readonly root: string;
  /** name → sha256 for files this process wrote or hashed (avoids hashing twice). */
  readonly #known = new Map<string, { size: number; mtimeMs: number; sha256: string }>();

  constructor(root: string) {
    this.root = resolve(root);
    this.description = `dir ${this.root}`;
  }

  folder(tag: string): string {
    if (!/^[A-Za-z0-9][A-Za-z0-9._+-]*$/.test(tag))
      throw new SignetError('E_INPUT_INVALID', `tag ${JSON.stringify(tag)} cannot name a release folder`);
    return join(this.root, tag);
  }

  async #meta(tag: string): Promise<ReleaseJson | undefined> {
    const file = join(this.folder(tag), 'release.json');
    if (!existsSync(file)) return undefined;
    return JSON.parse(await readFile(file, 'utf8')) as ReleaseJson;
  }

  async #writeMeta(meta: ReleaseJson, body?: string): Promise<void> {
    const dir = this.folder(meta.tag);
    if (body !== undefined) await atomicWrite(join(dir, 'NOTES.md'), body);
    await atomicWrite(join(dir, 'release.json'), `${JSON.stringify(meta, null, 2)}\n`);
  }

  async #release(meta: ReleaseJson): Promise<RemoteRelease> {
    const dir = this.folder(meta.tag);
    const notes = join(dir, 'NOTES.md');
    const stats = await stat(dir);
    return {
      id: stats.ino,
      tag: meta.tag,
      title: meta.title,
      body: existsSync(notes) ? await readFile(notes, 'utf8') : '',
      draft: meta.draft,
      prerelease: meta.prerelease,
      url: `file://${dir}`,
      assets: await this.#assets(meta.tag),
    };
  }

  async #assets(tag: string): Promise<RemoteAsset[]> {
    const dir = this.folder(tag);
    const out: RemoteAsset[] = [];
    for (const name of (await readdir(dir)).sort()) {
      if (name.startsWith('.') || DIR_RESERVED.has(name)) continue;
      const s = await stat(join(dir, name));
      if (!s.isFile()) continue;
      const known = this.#known.get(join(dir, name));
      const sha256 = known && known.size === s.size && known.mtimeMs === s.mtimeMs ? known.sha256 : undefined;
      out.push({ id: s.ino, name, size: s.size, sha256, downloadUrl: `file://${join(dir, name)}` });
    }
    return out;
  }

  async findReleases(tag: string): Promise<RemoteRelease[]> {
    const meta = await this.#meta(tag);
    return meta ? [await this.#release(meta)] : [];
  }

  async createRelease(input: CreateReleaseInput): Promise<RemoteRelease> {
    await mkdir(this.folder(input.tag), { recursive: true });
    const meta: ReleaseJson = {
      schema: 'signet.release/v1',
      tag: input.tag,
      title: input.title,
      draft: input.draft,
      prerelease: input.prerelease,
      createdAt: new Date().toISOString(),
      publishedAt: input.draft ? null : new Date().toISOString(),
      notes: 'NOTES.md',
      assets: [],
    };
    await this.#writeMeta(meta, input.body);
    return this.#release(meta);
  }

  async updateRelease(release: RemoteRelease, fields: Partial<ReleaseFields>): Promise<RemoteRelease> {
    const meta = await this.#meta(release.tag);
    if (!meta)
      throw new SignetError('E_FORGE_NOT_FOUND', `dir: release ${release.tag} vanished from ${this.root}`);
    if (fields.title !== undefined) meta.title = fields.title;
    if (fields.prerelease !== undefined) meta.prerelease = fields.prerelease;
    if (fields.draft !== undefined) {
      if (meta.draft && !fields.draft) meta.publishedAt = new Date().toISOString();
      meta.draft = fields.draft;
    }
    const assets = await this.#assets(release.tag);
    meta.assets = assets.map((a) => ({ name: a.name, size: a.size, sha256: a.sha256 ?? null }));
    await this.#writeMeta(meta, fields.body);
    return this.#release(meta);
  }

  async deleteRelease(release: RemoteRelease): Promise<void> {
    await rm(this.folder(release.tag), { recursive: true, force: true });
  }

  async listAssets(release: RemoteRelease): Promise<RemoteAsset[]> {
    return this.#assets(release.tag);
  }

  async uploadAsset(release: RemoteRelease, input: UploadInput): Promise<UploadedAsset> {
    if (DIR_RESERVED.has(input.name))
      throw new SignetError('E_INPUT_INVALID', `asset name ${input.name} is reserved in a dir: release`);
    const dir = this.folder(release.tag);
    const final = join(dir, input.name);
    if (existsSync(final))
      throw new SignetError('E_FORGE_FAILED', `dir: asset ${input.name} already exists in ${dir}`);
    const part = join(dir, `.${input.name}.part`);
    // One streamed pass: copy and hash together.
    const hash = createHash('sha256');
    await pipeline(
      createReadStream(input.path, { highWaterMark: 1 << 20 }),
      new Transform({
        transform(chunk: Buffer, _enc, done) {
          hash.update(chunk);
          done(null, chunk);
        },
      }),
      createWriteStream(part),
    );
    await rename(part, final);
    const s = await stat(final);
    const sha256 = hash.digest('hex');
    this.#known.set(final, { size: s.size, mtimeMs: s.mtimeMs, sha256 });
    return {
      id: s.ino,
      name: input.name,
      size: s.size,
      sha256,
      downloadUrl: `file://${final}`,
      sentSha256: sha256,
    };
  }

  async deleteAsset(release: RemoteRelease, asset: RemoteAsset): Promise<void> {
    await rm(join(this.folder(release.tag), asset.name), { force: true });
  }

  async renameAsset(release: RemoteRelease, asset: RemoteAsset, name: string): Promise<RemoteAsset> {
    const dir = this.folder(release.tag);
    await rename(join(dir, asset.name), join(dir, name));
    const known = this.#known.get(join(dir, asset.name));
    if (known) this.#known.set(join(dir, name), known);
    return { ...asset, name, downloadUrl: `file://${join(dir, name)}` };
  }

  async download(
    release: RemoteRelease,
    asset: RemoteAsset,
    dest: string,
  ): Promise<{ sha256: string; size: number }> {
    const src = join(this.folder(release.tag), asset.name);
    const hash = createHash('sha256');
    let size = 0;
    await pipeline(
      createReadStream(src, { highWaterMark: 1 << 20 }),
      new Transform({
        transform(chunk: Buffer, _enc, done) {
          hash.update(chunk);
          size += chunk.length;
          done(null, chunk);
        },
      }),
      createWriteStream(dest),
    );
    return { sha256: hash.digest('hex'), size };
  }

  async readBackSha256(release: RemoteRelease, asset: RemoteAsset): Promise<string> {
    const path = join(this.folder(release.tag), asset.name);
    const s = await stat(path);
    const known = this.#known.get(path);
    if (known && known.size === s.size && known.mtimeMs === s.mtimeMs) return known.sha256;
    const sha256 = await hashFile(path);
    this.#known.set(path, { size: s.size, mtimeMs: s.mtimeMs, sha256 });
    return sha256;
  }
}

async function atomicWrite(path: string, text: string): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  await writeFile(tmp, text);
  await rename(tmp, path);
}
