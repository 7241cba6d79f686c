/**
 * Binding Signet's reading of a signature to the one osslsigncode verified: the leaf certificate
 * every pin is checked against is the certificate of the signature's blob whose issuer **and**
 * serial are those of the signer osslsigncode reported, and the blob's primary SignerInfo must
 * name that serial. A blob that does not hold that signer is refused (E_VERIFY_SIGNER_UNBOUND),
 * so a second, unverified signature can never supply the pinned certificate.
 *
 * Distinguished names are compared as lists of attribute=value pairs, whole and in order. Two
 * spellings are read: OpenSSL's one-line form ("/CN=Example Ltd/O=Example", `\xHH` escapes; what
 * osslsigncode prints and what profiles use) and Node's multi-line form (RFC 2253 escapes).
 */
import type { X509Certificate } from 'node:crypto';
import { SignetError } from '../errors.ts';
import type { ParsedPkcs7 } from './der.ts';

const ATTR = '[A-Za-z][A-Za-z0-9.-]*=';

/** Decodes `\xHH` runs (OpenSSL one-line escapes of non-ASCII bytes) and RFC 2253 `\c` escapes. */
function unescapeValue(value: string): string {
  const hex = value.replace(/(?:\\x[0-9A-Fa-f]{2})+/g, (run) =>
    Buffer.from(run.replace(/\\x/g, ''), 'hex').toString('utf8'),
  );
  return hex
    .replace(/\\([0-9A-Fa-f]{2})/g, (_, h: string) => String.fromCharCode(Number.parseInt(h, 16)))
    .replace(/\\(.)/g, '$1')
    .trim();
}

/** A DN as its attribute=value pairs, in order; undefined when it is not a DN. */
export function dnParts(dn: string): string[] | undefined {
  const text = dn.trim();
  if (!text) return undefined;
  const rdns = text.startsWith('/')
    ? text.slice(1).split(new RegExp(`/(?=${ATTR})`))
    : text.includes('\n')
      ? text.split('\n')
      : text.split(new RegExp(`(?<!\\\\),\\s*(?=${ATTR})`));
  const out: string[] = [];
  for (const rdn of rdns) {
    for (const ava of rdn.split(new RegExp(`(?<!\\\\)\\s*\\+\\s*(?=${ATTR})`))) {
      const eq = ava.indexOf('=');
      if (eq <= 0) return undefined;
      out.push(`${ava.slice(0, eq).trim().toUpperCase()}=${unescapeValue(ava.slice(eq + 1))}`);
    }
  }
  return out;
}

/** True when both name the same DN, whole: "/CN=Example Ltd" is not "/CN=Example Ltdx". */
export function sameDn(a: string, b: string): boolean {
  const x = dnParts(a);
  const y = dnParts(b);
  return !!x && !!y && x.length === y.length && x.every((p, i) => p === y[i]);
}

/** Node's multi-line DN as OpenSSL's one-line form ("/CN=…/O=…"). */
export function oneLineDn(multiline: string): string {
  return `/${multiline.split('\n').join('/')}`;
}

function normSerial(hex: string): string {
  return hex.toUpperCase().replace(/^0+(?=.)/, '');
}

/** What osslsigncode reported about the signer it verified. */
export interface ReportedSigner {
  issuer?: string;
  signerSerial?: string;
}

/** The certificate of `p7` that is the signer osslsigncode verified; throws when there is none. */
export function boundSigner(
  file: string,
  path: string,
  p7: ParsedPkcs7,
  reported: ReportedSigner,
): X509Certificate {
  const unbound = (why: string): never => {
    throw new SignetError('E_VERIFY_SIGNER_UNBOUND', `${file}: ${why}`, {
      details: { path, issuer: reported.issuer, serial: reported.signerSerial },
    });
  };
  const { issuer, signerSerial } = reported;
  if (!issuer || !signerSerial) return unbound('osslsigncode did not report the signer it verified');
  const serial = normSerial(signerSerial);
  if (p7.signerSerials[0] !== serial)
    return unbound(
      `the signature Signet read is not the one osslsigncode verified (signer serial ${p7.signerSerials[0] ?? 'none'}, verified ${serial})`,
    );
  const hits = p7.certificates.filter(
    (c) => normSerial(c.serialNumber) === serial && sameDn(oneLineDn(c.issuer), issuer),
  );
  const first = hits[0];
  if (!first || hits.some((c) => !c.raw.equals(first.raw)))
    return unbound(
      `no single certificate of the signature has the verified signer's issuer "${issuer}" and serial ${serial}`,
    );
  return first;
}
