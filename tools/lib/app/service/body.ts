/** Request bodies for the service's use cases, from a file or bytes (a Node server calling the library uses these). */
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';

export function fileBody(path: string): Readable {
  return createReadStream(path);
}

export function bufferBody(b: Buffer): Readable {
  return Readable.from([b]);
}
