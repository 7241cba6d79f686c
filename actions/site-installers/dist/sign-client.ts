/**
 * `node sign-client.ts FILE`: asks the Signet process that started this build (sign-server.ts)
 * to sign FILE in place. Exit 0 only when the file was signed and verified. Used by the NSIS
 * `!uninstfinalize` hook; kept dependency-free so it starts fast.
 */
import { request } from 'node:http';

const file = process.argv[2];
const socketPath = process.env['SIGNET_SIGN_SOCKET'];
const token = process.env['SIGNET_SIGN_TOKEN'];
if (!file || !socketPath || !token) {
  process.stderr.write(
    'sign-client: usage: sign-client FILE (with SIGNET_SIGN_SOCKET and SIGNET_SIGN_TOKEN set)\n',
  );
  process.exit(2);
}
const body = JSON.stringify({ path: file });
const req = request(
  {
    socketPath,
    path: '/sign',
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
  },
  (res) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => {
      let reply: { ok?: boolean; error?: { code?: string; message?: string } } = {};
      try {
        reply = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {}
      if (res.statusCode === 200 && reply.ok) process.exit(0);
      process.stderr.write(
        `sign-client: [${reply.error?.code ?? res.statusCode}] ${reply.error?.message ?? 'signing failed'}\n`,
      );
      process.exit(1);
    });
  },
);
req.on('error', (e) => {
  process.stderr.write(`sign-client: cannot reach the signer: ${e.message}\n`);
  process.exit(1);
});
req.end(body);
