/**
 * `signet demo`: the whole pipeline on embedded defaults, on a fresh machine, with no forge and
 * no real certificate — a demo repository created on the fly (stable plan, beta plan, changelog,
 * release commit and tag), a throwaway dev PKI and a local RFC 3161 TSA, a real Windows service
 * agent built with mingw and signed once, signed NSIS + MSI installers for two demo sites, and a
 * release published to a local folder. Every stage is a pipeline step over one context.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import type { SignedArtifact } from '../artifact.ts';
import { loadConfig, parseConfig } from '../config/load.ts';
import type { SignetConfig } from '../config/schema.ts';
import { SignetError } from '../errors.ts';
import { registerSecret } from '../redact.ts';
import { runPipeline, type Step, type StepReport } from '../steps/pipeline.ts';
import type { ReleasePlan } from '../version/index.ts';
import { buildDemoAgent } from './agent.ts';
import { prepareDemoOut } from './out-dir.ts';
import { createDemoRepo } from './repo.ts';

export interface DemoOptions {
  /** Output folder (default ./demo-out); replaced when the demo made it, refused when not (see out-dir.ts). */
  out: string;
  /** Replace a non-empty folder the demo did not make. */
  force?: boolean;
  /** Print progress lines (to stderr). */
  onLine?: (line: string) => void;
  /** Build the per-site installers (needs makensis, wixl, msibuild, 7z). Default true. */
  installers?: boolean;
}

export interface DemoResult {
  ok: boolean;
  out: string;
  steps: StepReport[];
  stablePlan?: unknown;
  betaPlan?: unknown;
  changelog?: string;
  release?: { tag: string; commit?: string | undefined };
  agent?: { path: string; sha256: string; subject: string; timestamp: string | null };
  verify?: unknown[];
  sites?: unknown[];
  published?: { folder: string; assets: string[] };
  error?: { code: string; message: string; hint: string };
}

interface Ctx {
  opts: DemoOptions;
  out: string;
  repo: string;
  say: (line: string) => void;
  result: DemoResult;
  config?: SignetConfig;
  version?: string;
  tag?: string;
  notes?: string;
  tsa?: { url: string; close(): Promise<void> };
  signedAgent?: SignedArtifact;
  assets: string[];
}

const DEMO_SITES = [
  {
    siteCode: 'ACME-HQ',
    serverUrl: 'https://rmm.example.invalid',
    company: 'ACME Corp. "Head Office" & Sons',
    siteName: 'Headquarters <Building 1>',
    department: 'IT $Operations',
    deviceType: 'Workstation',
    tags: ['hq', 'finance', '%PROGRAMDATA%', 'émoji 🚀'],
    keyVersion: 3,
  },
  {
    siteCode: 'Globex-Lab',
    serverUrl: 'https://rmm.example.invalid',
    company: 'Globex',
    siteName: 'R&D Lab',
    department: 'Research',
    deviceType: 'Server',
    tags: ['lab'],
    keyVersion: 1,
  },
];

function planLine(label: string, plan: ReleasePlan): string {
  const bump = plan.bump ?? 'none';
  return `${label}: ${plan.previousTag ?? '(none)'} → ${plan.tag ?? '(none)'} (bump ${bump}; ${plan.released ? 'release' : 'no release'}: ${plan.reason})`;
}

/** Plans the demo repository on one channel (the repository's own signet.config.yaml applies). */
function planStep(
  channel: 'stable' | 'beta',
  key: 'stablePlan' | 'betaPlan',
  label: string,
  runNumber?: number,
): Step<Ctx> {
  return {
    name: `plan ${channel}`,
    async run(ctx) {
      const { planFromRepo } = await import('../version/index.ts');
      const { config } = loadConfig(ctx.repo);
      const { plan } = await planFromRepo({
        cwd: ctx.repo,
        config: config.version,
        commitMessage: config.git.commitMessage,
        channel,
        runNumber,
        env: {},
      });
      ctx.result[key] = plan;
      ctx.say(planLine(label, plan));
    },
  };
}

const steps: Step<Ctx>[] = [
  {
    name: 'demo repository',
    async run(ctx) {
      await createDemoRepo(ctx.repo);
      ctx.say(`demo repository: ${ctx.repo} (v0.3.0, two betas, five commits since)`);
    },
  },
  planStep('beta', 'betaPlan', 'beta plan  ', 7),
  planStep('stable', 'stablePlan', 'stable plan'),
  {
    name: 'release (stable, local)',
    async run(ctx) {
      const { applyRelease } = await import('../release/index.ts');
      const { config } = loadConfig(ctx.repo);
      const applied = await applyRelease({ cwd: ctx.repo, config, channel: 'stable', env: {} });
      if (!applied.tag) throw new SignetError('E_INTERNAL', 'the demo release made no tag');
      ctx.tag = applied.tag;
      ctx.version = applied.plan.version ?? undefined;
      ctx.notes = applied.notes?.markdown;
      ctx.result.release = { tag: applied.tag, commit: applied.commit };
      const changelog = readFileSync(join(ctx.repo, 'CHANGELOG.md'), 'utf8');
      ctx.result.changelog = changelog;
      ctx.say(
        `released ${applied.tag} (commit ${applied.commit?.slice(0, 7)}); files: ${applied.files.join(', ')}`,
      );
      ctx.say(`--- CHANGELOG.md (top) ---\n${changelog.split('\n').slice(0, 24).join('\n')}\n---`);
    },
  },
  {
    name: 'dev certificate and local TSA',
    async run(ctx) {
      const { makeDevCert } = await import('../sign/index.ts');
      const { startLocalTsa } = await import('../sign/local-tsa.ts');
      const pki = await makeDevCert(join(ctx.out, 'dev-pki'));
      const tsa = await startLocalTsa({ cert: pki.tsaCert, key: pki.tsaKey, chain: pki.caCert });
      ctx.tsa = tsa;
      const profile = {
        ...pki.profile,
        timestamp: { urls: [tsa.url], retries: 1, retryWaitMs: 200, timeoutMs: 10_000 },
      };
      ctx.config = parseConfig(
        {
          signing: { defaultProfile: 'dev', profiles: { dev: profile } },
          installers: {
            product: { vendor: 'ExampleVendor', product: 'RMMAgent', serviceName: 'SignetDemoAgent' },
            cacheDir: join(ctx.out, 'cache'),
          },
        },
        'demo defaults',
      );
      ctx.say(
        `dev PKI: ${relative(process.cwd(), pki.dir) || pki.dir} — ${pki.subject} (leaf sha256 ${pki.leafSha256.slice(0, 16)}…)`,
      );
      ctx.say(`local TSA: ${tsa.url}`);
    },
  },
  {
    name: 'build and sign the agent',
    async run(ctx) {
      const { createSigner, inspectSignature, verifyOptionsOf, resolveProfile } = await import(
        '../sign/index.ts'
      );
      const config = ctx.config!;
      const agent = await buildDemoAgent(join(ctx.out, 'build', 'agent.exe'), {
        version: ctx.version ?? '0.0.0',
        serviceName: 'SignetDemoAgent',
      });
      const signer = createSigner(config, { profile: 'dev' });
      ctx.signedAgent = await signer.sign(agent);
      const report = await inspectSignature(
        agent,
        verifyOptionsOf(resolveProfile(config, { profile: 'dev' })),
        {
          profile: 'dev',
          requireTimestamp: true,
          dev: true,
        },
      );
      ctx.result.agent = {
        path: agent,
        sha256: ctx.signedAgent.sha256,
        subject: ctx.signedAgent.signature.subject,
        timestamp: report.timestamp,
      };
      ctx.result.verify = [report];
      ctx.assets.push(agent);
      ctx.say(
        `signed agent: ${relative(process.cwd(), agent)}\n  verify: signed=${report.signed} digest=${report.digest} signatures=${report.signatures} timestamp=${report.timestamp}\n  signer: ${report.subject}\n  sha256: ${report.fileSha256}`,
      );
    },
  },
  {
    name: 'per-site installers',
    skip: (ctx) => (ctx.opts.installers === false ? 'installers disabled' : false),
    async run(ctx) {
      const { buildSiteInstallers, validateSites } = await import('../installers/index.ts');
      const { createSigner } = await import('../sign/index.ts');
      const config = ctx.config!;
      const { sites, problems } = validateSites(
        DEMO_SITES.map((s) => {
          const key = `demo-enroll-${randomBytes(12).toString('hex')}`;
          registerSecret(key);
          return { ...s, enrollmentKey: key };
        }),
      );
      if (problems.length)
        throw new SignetError('E_SITE_INVALID', problems.map((p) => `${p.path}: ${p.message}`).join('; '));
      const outDir = join(ctx.out, 'installers');
      const result = await buildSiteInstallers({
        agent: ctx.signedAgent!,
        sites,
        config,
        signer: createSigner(config, { profile: 'dev' }),
        outDir,
        version: ctx.version,
      });
      ctx.result.sites = result.results;
      for (const r of result.results) {
        if (!r.ok)
          throw new SignetError('E_INSTALLER_BUILD_FAILED', `${r.siteCode}: ${r.error?.message ?? 'failed'}`);
        // the installers carry their sites' enrollment keys: they go to the sites, never into the release
        ctx.say(
          `site ${r.siteCode} ${r.fingerprint}: ${[r.exe, r.msi].map((f) => relative(process.cwd(), resolve(outDir, f ?? ''))).join(', ')} (signed, verified, agent byte-identical)`,
        );
      }
    },
  },
  {
    name: 'publish to a local folder (the signed agent; never the site installers)',
    async run(ctx) {
      const { runPublish } = await import('../app/publish.ts');
      const folder = join(ctx.out, 'release');
      const outcome = await runPublish({
        config: ctx.config!,
        cwd: ctx.out,
        to: `dir:${folder}`,
        tag: ctx.tag!,
        channel: 'stable',
        notes: ctx.notes,
        files: ctx.assets,
        profile: 'dev',
        allowDevSignatures: true,
        env: {},
      });
      const assets = outcome.result ? outcome.result.assets.map((a) => a.name) : [];
      ctx.result.published = { folder, assets };
      ctx.say(`published ${ctx.tag} to ${relative(process.cwd(), folder)}: ${assets.join(', ')}`);
    },
  },
];

export async function runDemo(options: DemoOptions): Promise<DemoResult> {
  const out = resolve(options.out);
  prepareDemoOut(out, { force: Boolean(options.force) });
  const ctx: Ctx = {
    opts: options,
    out,
    repo: join(out, 'repo'),
    say: options.onLine ?? (() => {}),
    result: { ok: false, out, steps: [] },
    assets: [],
  };
  try {
    const pipeline = await runPipeline(steps, ctx, {
      onStep: (r) => {
        if (r.status === 'failed') ctx.say(`✗ ${r.name}: ${r.error?.message}`);
      },
    });
    ctx.result.steps = pipeline.steps;
    ctx.result.ok = pipeline.ok;
    if (pipeline.error) {
      ctx.result.error = {
        code: pipeline.error.code,
        message: pipeline.error.message,
        hint: pipeline.error.hint,
      };
      throw pipeline.error;
    }
    return ctx.result;
  } finally {
    await ctx.tsa?.close();
  }
}
