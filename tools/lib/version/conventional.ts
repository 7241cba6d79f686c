/**
 * Conventional Commits, parsed by hand: a header regex plus a footer scan. The library parser
 * (conventional-commits-parser) builds a full AST per commit and is about 30x slower on 100,000
 * commits (see bench/version.ts), while planning needs only type, scope, "!", the BREAKING CHANGE
 * footers and the revert reference.
 */
import type { RawCommit } from '../git/log.ts';

export interface ConventionalCommit {
  sha: string;
  shortSha: string;
  /** True for commits with two or more parents (looked through, never analysed). */
  merge: boolean;
  /** First line of the message. */
  header: string;
  /** Lower-cased type, or null when the header is not a conventional header. */
  type: string | null;
  scope: string | null;
  /** The description after `type(scope): `, or the whole header when not conventional. */
  subject: string;
  /** `!` after type/scope, or a BREAKING CHANGE / BREAKING-CHANGE footer. */
  breaking: boolean;
  /** Texts of the BREAKING CHANGE footers (or the subject for a bare `!`). */
  breakingNotes: string[];
  /** For a revert: the (possibly abbreviated) id of the reverted commit. */
  revertOf: string | null;
  /** For a revert: the header of the reverted commit, when the message quotes it. */
  revertedHeader: string | null;
  /** Whether the subject (first line only) carries `[skip ci]` / `[ci skip]` / `[skip release]`. */
  skipCi: boolean;
}

const HEADER = /^([A-Za-z][\w-]*)(?:\(([^()\r\n]*)\))?(!)?:[ \t]+(\S.*)$/;
const GIT_REVERT = /^Revert "(.+)"\s*$/;
const REVERTS = /This reverts commit ([0-9a-fA-F]{7,64})/;
const BREAKING = /^BREAKING[ -]CHANGE:[ \t]*(.*)$/;
const SKIP_CI = /\[(skip ci|ci skip|no ci|skip actions|actions skip|skip release|release skip)\]/i;

/**
 * A copy of `s` that does not keep its parent string alive. V8 makes substrings of 13+ chars
 * "sliced strings" that reference the whole message; 100,000 kept commits would keep every
 * message in memory. Slicing a fresh concatenation flattens it into a new, small string.
 */
function own(s: string): string {
  return s.length < 13 ? s : ` ${s}`.slice(1);
}

export function parseHeader(
  header: string,
): { type: string; scope: string | null; breaking: boolean; subject: string } | null {
  const m = HEADER.exec(header);
  if (!m) return null;
  return {
    type: m[1]!.toLowerCase(),
    scope: m[2]?.trim() || null,
    breaking: m[3] === '!',
    subject: m[4]!.trim(),
  };
}

/**
 * Parses one commit. Pure; handles CRLF messages. `lean` keeps only what version analysis needs
 * (id, type, scope, breaking, revert reference): header, subject and notes are left empty, so
 * planning over 100,000 commits stays small in memory.
 */
export function parseCommit(
  raw: RawCommit,
  options: { lean?: boolean | ((c: ConventionalCommit) => boolean) } = {},
): ConventionalCommit {
  const message = raw.message.includes('\r') ? raw.message.replace(/\r\n?/g, '\n') : raw.message;
  const nl = message.indexOf('\n');
  const header = (nl < 0 ? message : message.slice(0, nl)).trim();
  const body = nl < 0 ? '' : message.slice(nl + 1);
  const c: ConventionalCommit = {
    sha: raw.sha,
    shortSha: raw.sha.slice(0, 7),
    merge: raw.parents.length > 1,
    header,
    type: null,
    scope: null,
    subject: header,
    breaking: false,
    breakingNotes: [],
    revertOf: null,
    revertedHeader: null,
    // The subject only: a squash merge lists its commits' subjects (`* docs: typo [skip ci]`) in
    // the body, and those do not ask to skip the release.
    skipCi: SKIP_CI.test(header),
  };
  const h = parseHeader(header);
  if (h) {
    c.type = h.type;
    c.scope = h.scope;
    c.subject = h.subject;
    c.breaking = h.breaking;
  }
  const gitRevert = GIT_REVERT.exec(header);
  if (gitRevert) {
    c.type = 'revert';
    c.revertedHeader = gitRevert[1]!;
    c.subject = gitRevert[1]!;
  } else if (c.type === 'revert') {
    c.revertedHeader = c.subject.replace(/^"(.*)"$/, '$1');
  }
  if (body) {
    const r = REVERTS.exec(body);
    if (r && c.type === 'revert') c.revertOf = r[1]!.toLowerCase();
    if (body.includes('BREAKING')) {
      const lines = body.split('\n');
      for (let i = 0; i < lines.length; i++) {
        const m = BREAKING.exec(lines[i]!);
        if (!m) continue;
        const note = [m[1]!.trim()];
        while (i + 1 < lines.length && lines[i + 1]!.trim() !== '' && !/^[\w-]+(: | #)/.test(lines[i + 1]!)) {
          note.push(lines[++i]!.trim());
        }
        c.breaking = true;
        c.breakingNotes.push(note.join(' ').trim());
      }
    }
  }
  if (c.breaking && c.breakingNotes.length === 0) c.breakingNotes.push(c.subject);
  c.sha = own(c.sha);
  // `lean` as a function: true for the commits that may be stripped (those the notes never show).
  if (options.lean === true || (typeof options.lean === 'function' && options.lean(c))) {
    c.shortSha = '';
    c.header = '';
    c.subject = '';
    c.revertedHeader = null;
    c.breakingNotes = [];
    if (c.scope) c.scope = own(c.scope);
    if (c.revertOf) c.revertOf = own(c.revertOf);
    return c;
  }
  c.shortSha = own(c.shortSha);
  c.header = own(c.header);
  c.subject = c.subject === header ? c.header : own(c.subject);
  if (c.scope) c.scope = own(c.scope);
  if (c.revertedHeader) c.revertedHeader = own(c.revertedHeader);
  if (c.revertOf) c.revertOf = own(c.revertOf);
  c.breakingNotes = c.breakingNotes.map(own);
  return c;
}
