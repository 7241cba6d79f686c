/**
 * Signing from a template: once osslsigncode has signed one file of a batch, every further file
 * of the same kind differs in its signature only by what is computed from it — the Authenticode
 * digest inside SpcIndirectDataContent, the `messageDigest` and `signingTime` attributes, the
 * program name (SpcSpOpusInfo), the signature value and its RFC 3161 timestamp. This module reads
 * such a template (refusing anything it does not understand whole), and makes the PKCS#7 of
 * another file from it with Node's crypto: every other byte (certificates, algorithm identifiers,
 * statement type) is osslsigncode's own encoding.
 *
 * The template is accepted only when Signet's reading reproduces it: the digest it computed for
 * the file osslsigncode signed is the one osslsigncode signed, the attributes it would encode
 * for that file are osslsigncode's byte for byte, and the template's signature verifies under
 * the scheme Signet signs with, by the leaf certificate, whose public key is the profile's key.
 * What it produces is verified like every signature (osslsigncode verify, chain, pins, timestamp
 * policy) before anything ships. Hand-written over der.ts because the point is to keep
 * osslsigncode's bytes and change a few fields; a schema library would decode and re-encode all.
 */
import { createHash, createPublicKey, type KeyObject, sign, verify, type X509Certificate } from 'node:crypto';
import {
  children,
  type DerNode,
  leafCertificate,
  nodeBytes,
  nodeContent,
  oid,
  oidOf,
  parsePkcs7,
  readNode,
  sortSetOf,
  tlv,
} from './der.ts';

export const OID = {
  signedData: '1.2.840.113549.1.7.2',
  spcIndirectData: '1.3.6.1.4.1.311.2.1.4',
  contentType: '1.2.840.113549.1.9.3',
  messageDigest: '1.2.840.113549.1.9.4',
  signingTime: '1.2.840.113549.1.9.5',
  statementType: '1.3.6.1.4.1.311.2.1.11',
  opusInfo: '1.3.6.1.4.1.311.2.1.12',
  rfc3161Timestamp: '1.3.6.1.4.1.311.3.3.1',
} as const;

/** Digest names (profile `digest`) and their OIDs. */
export const DIGEST_OIDS: Record<string, string> = {
  sha1: '1.3.14.3.2.26',
  sha256: '2.16.840.1.101.3.4.2.1',
  sha384: '2.16.840.1.101.3.4.2.2',
  sha512: '2.16.840.1.101.3.4.2.3',
};

const KNOWN_ATTRIBUTES = new Set<string>([
  OID.contentType,
  OID.messageDigest,
  OID.signingTime,
  OID.statementType,
  OID.opusInfo,
]);

export interface SignatureTemplate {
  algorithm: string;
  /** SignedData's version and digestAlgorithms, raw. */
  head: Buffer;
  /** eContentType (raw OID) and SpcIndirectDataContent (raw, whole). */
  contentType: Buffer;
  indirect: Buffer;
  /** Where the file digest lies in `indirect`. */
  digestAt: number;
  digestLength: number;
  /** certificates [0] and crls [1], raw, as they were. */
  certificates: Buffer;
  /** SignerInfo's version, sid and digestAlgorithm, raw; its signatureAlgorithm, raw. */
  signerHead: Buffer;
  signatureAlgorithm: Buffer;
  /** The signed attributes other than the per-file ones, raw. */
  fixedAttributes: Buffer[];
  hasOpusInfo: boolean;
  hasSigningTime: boolean;
  url: string | undefined;
  leaf: X509Certificate;
}

/** What a file's signature is made of. */
export interface TemplateInput {
  /** The file's Authenticode digest. */
  digest: Buffer;
  /** Program name (SpcSpOpusInfo), as osslsigncode's `-n`. */
  description: string;
  /** Signing time (default now). */
  time?: Date;
}

/** osslsigncode's SpcSpOpusInfo: programName as [0] { ascii [1] }, moreInfo as [1] { url [0] }. */
export function opusInfo(description: string | undefined, url: string | undefined): Buffer {
  const parts: Buffer[] = [];
  if (description !== undefined) parts.push(tlv(0xa0, tlv(0x81, Buffer.from(description, 'utf8'))));
  if (url !== undefined) parts.push(tlv(0xa1, tlv(0x80, Buffer.from(url, 'utf8'))));
  return tlv(0x30, ...parts);
}

function attribute(type: string, value: Buffer): Buffer {
  return tlv(0x30, oid(type), tlv(0x31, value));
}

/** UTCTime through 2049, GeneralizedTime from 2050 (RFC 5280, as OpenSSL's ASN1_TIME). */
export function derTime(d: Date): Buffer {
  const iso = d.toISOString(); // 2026-12-02T11:02:48.123Z
  const digits = iso.slice(0, 19).replace(/[-T:]/g, '');
  const year = d.getUTCFullYear();
  return year >= 2050 || year < 1950
    ? tlv(0x18, Buffer.from(`${digits}Z`, 'latin1'))
    : tlv(0x17, Buffer.from(`${digits.slice(2)}Z`, 'latin1'));
}

/** The signature scheme Signet signs with for `key`: ECDSA (DER) or RSA PKCS#1 v1.5. */
function schemeOf(key: KeyObject): 'ec' | 'rsa' | undefined {
  const t = key.asymmetricKeyType;
  return t === 'ec' || t === 'rsa' ? t : undefined;
}

export type TemplateResult = { template: SignatureTemplate } | { refused: string };

/**
 * Reads osslsigncode's signature `pkcs7` of a file whose digest is `expect.digest`, signed with
 * `-n expect.description` (and `-i url`) by `key`. A `refused` reason says why it cannot serve.
 */
export function readTemplate(pkcs7: Buffer, expect: TemplateExpectation): TemplateResult {
  try {
    return parseTemplate(pkcs7, expect);
  } catch (e) {
    // a certificate or key OpenSSL cannot decode
    return { refused: `malformed: ${(e as Error).message}` };
  }
}

export interface TemplateExpectation {
  algorithm: string;
  digest: Buffer;
  description: string;
  url: string | undefined;
  key: KeyObject;
}

function parseTemplate(pkcs7: Buffer, expect: TemplateExpectation): TemplateResult {
  const refused = (why: string): TemplateResult => ({ refused: why });
  const der = pkcs7;
  const at = (n: DerNode | undefined, tag: number): n is DerNode => n?.tag === tag;
  const ci = readNode(der, 0);
  if (!at(ci, 0x30) || ci.end !== der.length) return refused('not one DER ContentInfo');
  const [ciType, ciContent] = children(der, ci);
  if (!at(ciType, 0x06) || oidOf(der, ciType) !== OID.signedData || !at(ciContent, 0xa0))
    return refused('not a SignedData');
  const sd = children(der, ciContent)[0];
  if (!at(sd, 0x30)) return refused('no SignedData');
  const parts = children(der, sd);
  const [version, digestAlgorithms, encap, ...rest] = parts;
  if (!at(version, 0x02) || !at(digestAlgorithms, 0x31) || !at(encap, 0x30))
    return refused('unexpected SignedData fields');
  const signerInfos = rest.pop();
  if (!at(signerInfos, 0x31)) return refused('no SignerInfos');
  if (!rest.length || rest.some((n) => n.tag !== 0xa0 && n.tag !== 0xa1)) return refused('no certificates');
  const [eType, eContent] = children(der, encap);
  if (!at(eType, 0x06) || oidOf(der, eType) !== OID.spcIndirectData || !at(eContent, 0xa0))
    return refused('the content is not SpcIndirectDataContent');
  const indirectNode = children(der, eContent)[0];
  if (!at(indirectNode, 0x30) || indirectNode.end !== eContent.end)
    return refused('malformed SpcIndirectDataContent');
  const [, digestInfo] = children(der, indirectNode);
  const [digestAlg, digestValue] = digestInfo ? children(der, digestInfo) : [];
  if (!at(digestAlg, 0x30) || !at(digestValue, 0x04)) return refused('malformed DigestInfo');
  const algOid = children(der, digestAlg)[0];
  const wantOid = DIGEST_OIDS[expect.algorithm];
  if (!wantOid || !at(algOid, 0x06) || oidOf(der, algOid) !== wantOid)
    return refused(`the file digest is not ${expect.algorithm}`);
  if (!nodeContent(der, digestValue).equals(expect.digest))
    return refused('osslsigncode signed another digest than Signet computed for the file');
  const indirect = nodeBytes(der, indirectNode);

  const infos = children(der, signerInfos);
  if (infos.length !== 1 || !at(infos[0], 0x30)) return refused('not exactly one SignerInfo');
  const si = children(der, infos[0]);
  const [siVersion, sid, siDigest, attrs, sigAlg, sigValue, unsigned, ...more] = si;
  if (!at(siVersion, 0x02) || !at(sid, 0x30) || !at(siDigest, 0x30) || !at(attrs, 0xa0))
    return refused('unexpected SignerInfo fields');
  if (!at(sigAlg, 0x30) || !at(sigValue, 0x04) || more.length) return refused('unexpected SignerInfo fields');
  const siDigestOid = children(der, siDigest)[0];
  if (!at(siDigestOid, 0x06) || oidOf(der, siDigestOid) !== wantOid)
    return refused(`the signer digest is not ${expect.algorithm}`);
  if (unsigned) {
    if (!at(unsigned, 0xa1)) return refused('unexpected SignerInfo fields');
    for (const a of children(der, unsigned)) {
      const t = children(der, a)[0];
      if (!t || oidOf(der, t) !== OID.rfc3161Timestamp)
        return refused('an unsigned attribute other than an RFC 3161 timestamp');
    }
  }

  const fixedAttributes: Buffer[] = [];
  let hasOpusInfo = false;
  let hasSigningTime = false;
  let messageDigest: Buffer | undefined;
  let opus: Buffer | undefined;
  let time: Buffer = Buffer.alloc(0);
  for (const a of children(der, attrs)) {
    const [type, values] = children(der, a);
    if (!at(type, 0x06) || !at(values, 0x31)) return refused('malformed attribute');
    const name = oidOf(der, type);
    if (!KNOWN_ATTRIBUTES.has(name)) return refused(`an unknown signed attribute ${name}`);
    const vs = children(der, values);
    if (vs.length !== 1) return refused(`attribute ${name} has ${vs.length} values`);
    const value = nodeBytes(der, vs[0]!);
    if (name === OID.messageDigest) messageDigest = value;
    else if (name === OID.signingTime) {
      hasSigningTime = true;
      time = value;
    } else if (name === OID.opusInfo) {
      hasOpusInfo = true;
      opus = value;
    } else {
      if (name === OID.contentType && !value.equals(oid(OID.spcIndirectData)))
        return refused('the contentType attribute is not SpcIndirectData');
      fixedAttributes.push(nodeBytes(der, a));
    }
  }
  const contentHash = hashOf(expect.algorithm, nodeContent(der, indirectNode));
  if (!messageDigest?.equals(tlv(0x04, contentHash)))
    return refused('the messageDigest attribute is not the digest of the content Signet reads');
  if (opus && !opus.equals(opusInfo(expect.description, expect.url)))
    return refused('the program name is not encoded as Signet encodes it');
  if (!opus && expect.description) return refused('the template has no program name');

  const p7 = parsePkcs7(der);
  const leaf = p7 ? leafCertificate(p7) : undefined;
  if (!leaf) return refused('no signer certificate');
  const scheme = schemeOf(expect.key);
  if (!scheme) return refused(`a ${expect.key.asymmetricKeyType} key (Signet signs with EC and RSA keys)`);
  const spki = (k: KeyObject) => k.export({ type: 'spki', format: 'der' });
  if (!spki(leaf.publicKey).equals(spki(createPublicKey(expect.key))))
    return refused("the key is not the signer certificate's");
  const signedAttrs = Buffer.concat([Buffer.from([0x31]), der.subarray(attrs.start + 1, attrs.end)]);
  if (!verify(expect.algorithm, signedAttrs, leaf.publicKey, nodeContent(der, sigValue)))
    return refused('its signature does not verify under the scheme Signet signs with');

  const template: SignatureTemplate = {
    algorithm: expect.algorithm,
    head: Buffer.concat([nodeBytes(der, version), nodeBytes(der, digestAlgorithms)]),
    contentType: nodeBytes(der, eType),
    indirect,
    digestAt: digestValue.contentStart - indirectNode.start,
    digestLength: digestValue.end - digestValue.contentStart,
    certificates: Buffer.concat(rest.map((n) => nodeBytes(der, n))),
    signerHead: Buffer.concat([nodeBytes(der, siVersion), nodeBytes(der, sid), nodeBytes(der, siDigest)]),
    signatureAlgorithm: nodeBytes(der, sigAlg),
    fixedAttributes,
    hasOpusInfo,
    hasSigningTime,
    url: expect.url,
    leaf,
  };
  // Signet's encoding of this very signature must be osslsigncode's, byte for byte
  const token = unsigned ? nodeContent(der, children(der, children(der, unsigned)[0]!)[1]!) : undefined;
  const again = assemble(
    template,
    withDigest(template, expect.digest),
    signedAttributes(template, indirect, expect.description, time),
    nodeContent(der, sigValue),
    token,
  );
  if (!again.equals(der)) return refused("Signet's encoding of the signature differs from osslsigncode's");
  return { template };
}

function hashOf(algorithm: string, data: Uint8Array): Buffer {
  return createHash(algorithm).update(data).digest();
}

/** The signed attributes of one file, in DER order (the content of [0] / of the SET signed). */
function signedAttributes(t: SignatureTemplate, indirect: Buffer, description: string, time: Buffer): Buffer {
  const content = indirect.subarray(readNode(indirect, 0)!.contentStart);
  const attrs = [...t.fixedAttributes, attribute(OID.messageDigest, tlv(0x04, hashOf(t.algorithm, content)))];
  if (t.hasSigningTime) attrs.push(attribute(OID.signingTime, time));
  if (t.hasOpusInfo) attrs.push(attribute(OID.opusInfo, opusInfo(description, t.url)));
  return Buffer.concat(sortSetOf(attrs));
}

/** The PKCS#7 ContentInfo of one signature. */
function assemble(
  t: SignatureTemplate,
  indirect: Buffer,
  attrs: Buffer,
  signature: Buffer,
  token?: Buffer,
): Buffer {
  const unsigned = token ? [tlv(0xa1, attribute(OID.rfc3161Timestamp, token))] : [];
  const signerInfo = tlv(
    0x30,
    t.signerHead,
    tlv(0xa0, attrs),
    t.signatureAlgorithm,
    tlv(0x04, signature),
    ...unsigned,
  );
  const signedData = tlv(
    0x30,
    t.head,
    tlv(0x30, t.contentType, tlv(0xa0, indirect)),
    t.certificates,
    tlv(0x31, signerInfo),
  );
  return tlv(0x30, oid(OID.signedData), tlv(0xa0, signedData));
}

function withDigest(t: SignatureTemplate, digest: Buffer): Buffer {
  if (digest.length !== t.digestLength) throw new Error('the digest length differs from the template');
  const indirect = Buffer.from(t.indirect);
  digest.copy(indirect, t.digestAt);
  return indirect;
}

/** A file's signature from the template, before its timestamp: what to sign, and how to finish. */
export interface PreparedSignature {
  /** The signature value (a timestamp token is requested over its digest). */
  signature: Buffer;
  /** The PKCS#7 with the RFC 3161 token `token` as unsigned attribute (or none). */
  finish(token?: Buffer): Buffer;
}

/** Signs one file's attributes with `key` (the template's signer key). */
export function signFromTemplate(
  t: SignatureTemplate,
  input: TemplateInput,
  key: KeyObject,
): PreparedSignature {
  const indirect = withDigest(t, input.digest);
  const attrs = signedAttributes(t, indirect, input.description, derTime(input.time ?? new Date()));
  const signature = sign(t.algorithm, tlv(0x31, attrs), key);
  return { signature, finish: (token) => assemble(t, indirect, attrs, signature, token) };
}
