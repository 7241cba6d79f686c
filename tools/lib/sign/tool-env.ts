/**
 * The environment osslsigncode runs with. glibc's malloc is asked to back its large buffers with
 * transparent huge pages (`GLIBC_TUNABLES=glibc.malloc.hugetlb=1`) unless the caller set
 * GLIBC_TUNABLES already (set it to empty to turn this off). osslsigncode reads each stream of an
 * MSI into one fresh buffer, and does so twice per verify (the signed digest, then the printed
 * one): on a kernel whose THP mode is "madvise" (Debian's and Ubuntu's), faulting that memory in
 * 4 KiB pages costs about a quarter of a 10 MB MSI's verify. Where THP is "always" or "never"
 * the hint changes nothing. It changes no output: only where the pages come from.
 */
export function osslsigncodeEnv(
  extra?: Record<string, string | undefined>,
): Record<string, string | undefined> {
  return { GLIBC_TUNABLES: process.env.GLIBC_TUNABLES ?? 'glibc.malloc.hugetlb=1', ...extra };
}
