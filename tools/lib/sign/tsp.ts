/**
 * An RFC 3161 client for signatures made in-process: the request osslsigncode's `-ts` sends (v1,
 * the digest of the signature value, a 64-bit nonce, certReq), one HTTP POST per attempt, TSAs in
 * order with the profile's retries and backoff (the same schedule as osslsigncode's attempts).
 * A reply is taken only when it is granted and its token's TSTInfo carries our imprint and nonce;
 * the token's signature and chain are checked by the verify every signed file goes through.
 */
import { randomBytes } from 'node:crypto';
import { SignetError } from '../errors.ts';
import { logger } from '../log.ts';
import { children, type DerNode, nodeContent, oid, oidOf, readNode, tlv } from './der.ts';
import { type TimestampPlan, tsaSchedule } from './osslsigncode.ts';
import { sleep } from './retry.ts';
import { DIGEST_OIDS, OID } from './template-signing.ts';

const TST_INFO = '1.2.840.113549.1.9.16.1.4';
/** A timestamp reply is a few KB; anything over this is refused. */
const MAX_REPLY = 1024 * 1024;

/** DER INTEGER of unsigned big-endian bytes. */
function integer(bytes: Buffer): Buffer {
  let b = bytes;
  while (b.length > 1 && b[0] === 0 && (b[1]! & 0x80) === 0) b = b.subarray(1);
  return tlv(0x02, b[0]! & 0x80 ? Buffer.concat([Buffer.from([0]), b]) : b);
}

/** The TimeStampReq for `imprint` (the digest of the signature value under `algorithm`). */
export function timestampRequest(algorithm: string, imprint: Buffer, nonce: Buffer): Buffer {
  const algOid = DIGEST_OIDS[algorithm];
  if (!algOid) throw new Error(`no OID for ${algorithm}`);
  return tlv(
    0x30,
    tlv(0x02, Buffer.from([1])),
    tlv(0x30, tlv(0x30, oid(algOid), Buffer.from([0x05, 0x00])), tlv(0x04, imprint)),
    integer(nonce),
    Buffer.from([0x01, 0x01, 0xff]),
  );
}

/** The token of a TimeStampResp, or why it is refused. */
export function tokenOf(
  reply: Buffer,
  expect: { algorithm: string; imprint: Buffer; nonce: Buffer },
): { token: Buffer } | { refused: string } {
  const refused = (why: string) => ({ refused: why });
  const at = (n: DerNode | undefined, tag: number): n is DerNode => n?.tag === tag;
  const resp = readNode(reply, 0);
  if (!at(resp, 0x30) || resp.end !== reply.length) return refused('the reply is not one DER TimeStampResp');
  const [status, token] = children(reply, resp);
  const code = at(status, 0x30) ? children(reply, status)[0] : undefined;
  if (!at(code, 0x02)) return refused('the reply has no status');
  const value = nodeContent(reply, code);
  if (value.length !== 1 || value[0] !== 0)
    return refused(`the TSA did not grant the request (status ${value.toString('hex')})`);
  if (!at(token, 0x30)) return refused('the reply holds no token');
  const [type, explicit] = children(reply, token);
  if (!at(type, 0x06) || oidOf(reply, type) !== OID.signedData || !at(explicit, 0xa0))
    return refused('the token is not a SignedData');
  const sd = children(reply, explicit)[0];
  const encap = sd && at(sd, 0x30) ? children(reply, sd)[2] : undefined;
  const [eType, eContent] = at(encap, 0x30) ? children(reply, encap) : [];
  if (!at(eType, 0x06) || oidOf(reply, eType) !== TST_INFO || !at(eContent, 0xa0))
    return refused('the token holds no TSTInfo');
  const octets = children(reply, eContent)[0];
  if (!at(octets, 0x04)) return refused('the token holds no TSTInfo');
  const info = nodeContent(reply, octets);
  const tst = readNode(info, 0);
  if (!at(tst, 0x30)) return refused('malformed TSTInfo');
  const fields = children(info, tst);
  const imprint = fields[2];
  const [alg, hashed] = at(imprint, 0x30) ? children(info, imprint) : [];
  const algOid = at(alg, 0x30) ? children(info, alg)[0] : undefined;
  if (!at(algOid, 0x06) || oidOf(info, algOid) !== DIGEST_OIDS[expect.algorithm] || !at(hashed, 0x04))
    return refused('the token stamps another digest algorithm');
  if (!nodeContent(info, hashed).equals(expect.imprint)) return refused('the token stamps another signature');
  const wanted = integer(expect.nonce);
  const nonce = fields.slice(5).find((f) => f.tag === 0x02);
  if (!nonce || !Buffer.from(info.subarray(nonce.start, nonce.end)).equals(wanted))
    return refused('the token does not carry our nonce');
  return { token: Buffer.from(reply.subarray(token.start, token.end)) };
}

async function post(url: string, body: Buffer, timeoutMs: number): Promise<Buffer> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/timestamp-query', accept: 'application/timestamp-reply' },
    body,
    signal: AbortSignal.timeout(timeoutMs),
    redirect: 'error',
  });
  if (res.status !== 200) throw new Error(`HTTP ${res.status}`);
  if (Number(res.headers.get('content-length') ?? 0) > MAX_REPLY) throw new Error('the reply is too large');
  const bytes = Buffer.from(await res.arrayBuffer());
  if (bytes.length > MAX_REPLY) throw new Error('the reply is too large');
  return bytes;
}

/**
 * A token over `signature` from the plan's TSAs: each in order, 1 + retries attempts with
 * backoff; E_TIMESTAMP_FAILED naming every failed attempt when none answers.
 */
export async function timestampSignature(
  plan: TimestampPlan,
  algorithm: string,
  imprint: Buffer,
): Promise<Buffer> {
  const failures: string[] = [];
  for (const attempt of tsaSchedule(plan)) {
    if (attempt.waitMs) await sleep(attempt.waitMs);
    const nonce = randomBytes(8);
    let why: string;
    try {
      const reply = await post(attempt.url, timestampRequest(algorithm, imprint, nonce), plan.timeoutMs);
      const got = tokenOf(reply, { algorithm, imprint, nonce });
      if ('token' in got) {
        if (failures.length)
          logger.info(`timestamped by ${attempt.url} after ${failures.length} failed attempt(s)`);
        return got.token;
      }
      why = got.refused;
    } catch (e) {
      const err = e as Error;
      why =
        err.name === 'TimeoutError'
          ? 'timed out'
          : ((err.cause as Error | undefined)?.message ?? err.message);
    }
    failures.push(`${attempt.url}: ${why}`);
    logger.warn(`timestamp authority ${attempt.url} failed (${why}); trying the next attempt`);
  }
  throw new SignetError(
    'E_TIMESTAMP_FAILED',
    `every timestamp authority failed:\n  - ${failures.join('\n  - ')}`,
    {
      details: { attempts: failures.length, urls: plan.urls },
    },
  );
}
