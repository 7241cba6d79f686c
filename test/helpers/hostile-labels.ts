/** The hostile site labels every installer and service test sends: quoting, template and script syntax, control and bidi characters, emoji, and 10,000 characters. */
export const NASTY = [
  `quote " single ' dollar $ brace \${PRODUCT} $\\n $$ %PATH% %VAR%`,
  '<Wix> & &amp; ]]> <!-- --> <?if x?>',
  'back\\slash\\\\ C:\\Program Files\\ "\\"',
  'new\nline\r\ncrlf\ttab \u0001\u0007\u001b[31m \u007f',
  'rtl \u202Eexe.txt\u202C \u200F\u061C עברית العربية',
  'emoji 🦄👩🏽‍💻 ÿ ß 中文 𝄞',
  '!define X 1\n!system "touch /tmp/pwned"\n!include evil.nsh',
];

/** 10,000 characters. */
export const LONG = `${'Ω∑'.repeat(4_999)}!!`;
