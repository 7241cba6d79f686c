/**
 * The redactor with many secrets: register 5,000 (a vendor's server holding every site's key),
 * then redact 1 MB of log text with a secret every ~4 KB. Before the trie, registering 5,000
 * secrets rebuilt and recompiled one regular expression per registration (10.9 s on this kind of
 * machine). Prints the times; asserts only that every planted secret was masked.
 */
import { clearSecrets, redact, registerSecret } from '../tools/lib/redact.ts';

const N = 5_000;
const secretOf = (i: number) =>
  `site-key-${i.toString(36).padStart(4, '0')}-${(i * 2654435761).toString(16)}`;

clearSecrets();
let t = performance.now();
for (let i = 0; i < N; i++) registerSecret(secretOf(i));
const registerMs = performance.now() - t;

const line = 'info: installer built for site north in 812 ms, uploaded 4,382,112 bytes\n';
const chunks: string[] = [];
let planted = 0;
while (chunks.join('').length < 1 << 20) {
  for (let k = 0; k < 55; k++) chunks.push(line);
  chunks.push(`debug: key=${secretOf((planted * 37) % N)}\n`);
  planted++;
}
const text = chunks.join('');
t = performance.now();
const out = redact(text);
const firstMs = performance.now() - t;
t = performance.now();
redact(text);
const againMs = performance.now() - t;
const masked = out.split('key=***').length - 1;
if (masked !== planted || out.includes('site-key-')) {
  console.error(`FAILED: ${masked}/${planted} planted secrets masked`);
  process.exit(1);
}
console.log(
  `register ${N} secrets: ${registerMs.toFixed(1)} ms; redact ${(text.length / 1024).toFixed(0)} KiB ` +
    `(${planted} secrets in it): ${firstMs.toFixed(1)} ms, again ${againMs.toFixed(1)} ms`,
);
