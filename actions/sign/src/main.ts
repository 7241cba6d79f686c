/** sign: Authenticode-sign files with a signing profile; each file is verified before it counts as signed. */
import { dirname } from 'node:path';
import { runAction, setOutputs, startAction, writeSummary } from '../../../tools/action/action.ts';
import { signSettings } from '../../../tools/action/settings.ts';
import { SignetError } from '../../../tools/lib/errors.ts';
import { expandFiles } from '../../../tools/lib/forge/assets.ts';
import { createSigner, signFiles } from '../../../tools/lib/sign/index.ts';

await runAction(async () => {
  const { s, cwd, loaded } = startAction(signSettings);
  const signer = createSigner(loaded.config, {
    ...(s.profile ? { profile: s.profile } : {}),
    releasePath: s.release,
    baseDir: loaded.path ? dirname(loaded.path) : cwd,
    overrides: s['tsa-urls']?.length ? { tsaUrls: s['tsa-urls'] } : {},
  });
  const r = await signFiles(signer, expandFiles(s.files, cwd));
  const signed = r.results
    .filter((x) => x.artifact)
    .map((x) => ({
      path: x.artifact!.path,
      sha256: x.artifact!.sha256,
      subject: x.artifact!.signature.subject,
      leafSha256: x.artifact!.signature.leafSha256,
      timestamp: x.artifact!.signature.timestamp ?? null,
      dev: x.artifact!.signature.dev,
    }));
  setOutputs({
    files: signed,
    signer: signed[0]?.subject,
    'signer-sha256': signed[0]?.leafSha256,
    signed: r.signed,
    failed: r.failed,
  });
  await writeSummary({
    title: `Signed ${r.signed} file(s) with profile ${signer.profile}${signer.dev ? ' (DEV — not for release)' : ''}`,
    rows: [
      ['signer', signed[0]?.subject ?? '—'],
      ['certificate SHA-256', signed[0]?.leafSha256 ?? '—'],
    ],
    table: {
      header: ['file', 'SHA-256', 'timestamp', 'result'],
      rows: r.results.map((x) => [
        x.path,
        x.artifact?.sha256 ?? '—',
        x.artifact?.signature.timestamp ?? '—',
        x.ok ? 'signed' : `${x.error?.code}: ${x.error?.message}`,
      ]),
    },
  });
  if (!r.ok)
    throw new SignetError(
      r.signed ? 'E_PARTIAL' : 'E_SIGN_FAILED',
      `${r.failed} of ${r.results.length} file(s) failed to sign`,
    );
});
