/**
 * GitHub's own workflow parser (@actions/workflow-parser) and expression library
 * (@actions/expressions), loaded for the tests. The parser imports its JSON schema without an
 * import attribute, which Node's ESM loader refuses; bundling it once with esbuild (which inlines
 * the JSON) sidesteps that.
 */
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';

export type WorkflowParser = typeof import('@actions/workflow-parser');
// biome-ignore lint/suspicious/noExplicitAny: the parser's template tokens are untyped here
export type Token = any;

let loaded: Promise<WorkflowParser> | undefined;

export function loadWorkflowParser(): Promise<WorkflowParser> {
  loaded ??= (async () => {
    const out = join(mkdtempSync(join(tmpdir(), 'signet-wfparser-')), 'parser.mjs');
    await build({
      stdin: {
        contents: "export * from '@actions/workflow-parser';",
        resolveDir: join(import.meta.dirname, '..', '..'),
        loader: 'js',
      },
      bundle: true,
      platform: 'node',
      format: 'esm',
      outfile: out,
      logLevel: 'silent',
      banner: {
        js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);",
      },
    });
    return (await import(pathToFileURL(out).href)) as WorkflowParser;
  })();
  return loaded;
}

export interface ParsedWorkflow {
  /** Parse and conversion errors (empty for a valid workflow). */
  errors: string[];
  /** The converted workflow template (jobs with ids, needs, if, steps, outputs). */
  template: Token;
  /** The raw token tree of the file (for step keys the template drops, such as `with`). */
  raw: Token;
}

export async function parseWorkflowText(name: string, content: string): Promise<ParsedWorkflow> {
  const P = await loadWorkflowParser();
  const r = P.parseWorkflow({ name, content }, new P.NoOperationTraceWriter());
  const errors = r.context.errors.getErrors().map((e) => e.message);
  const template = r.value ? await P.convertWorkflowTemplate(r.context, r.value) : undefined;
  for (const e of template?.errors ?? []) errors.push(e.Message);
  return { errors, template, raw: r.value };
}

export function parseWorkflowFile(path: string): Promise<ParsedWorkflow> {
  return parseWorkflowText(basename(path), readFileSync(path, 'utf8'));
}

/** Token types of @actions/workflow-parser (templates/tokens/types). */
export const TT = {
  String: 0,
  Sequence: 1,
  Mapping: 2,
  BasicExpression: 3,
  InsertExpression: 4,
  Boolean: 5,
  Number: 6,
  Null: 7,
} as const;

/** Looks a key up in a raw MappingToken. */
export function mapGet(token: Token, key: string): Token {
  if (!token || token.type !== TT.Mapping) return undefined;
  for (const kv of token.map) if (kv.key.value === key) return kv.value;
  return undefined;
}
