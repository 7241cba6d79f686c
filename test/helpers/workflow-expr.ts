/**
 * `${{ }}` evaluation for the workflow harness with GitHub's own expression library
 * (@actions/expressions): contexts as plain JSON, the status functions (success, failure, always,
 * cancelled) supplied by the harness, and template tokens of @actions/workflow-parser turned into
 * values.
 */
import { data, Evaluator, Lexer, Parser } from '@actions/expressions';
import { type Token, TT } from './workflow-parser.ts';

export interface ExprContext {
  github: Record<string, unknown>;
  inputs: Record<string, unknown>;
  secrets: Record<string, string>;
  vars: Record<string, string>;
  env: Record<string, string>;
  needs: Record<string, { outputs: Record<string, string>; result: string }>;
  steps: Record<string, { outputs: Record<string, string>; outcome: string; conclusion: string }>;
  runner: Record<string, string>;
  job: Record<string, unknown>;
  matrix: Record<string, unknown>;
  strategy: Record<string, unknown>;
}

/** success/failure at the level where the expression is evaluated (job `if` or step `if`). */
export interface Status {
  failed: boolean;
  cancelled: boolean;
  /** A needed job did not succeed (skipped): success() is false without failure() being true. */
  blocked?: boolean;
}

const CONTEXT_NAMES = [
  'github',
  'inputs',
  'secrets',
  'vars',
  'env',
  'needs',
  'steps',
  'runner',
  'job',
  'matrix',
  'strategy',
];

type Fn = {
  name: string;
  minArgs: number;
  maxArgs: number;
  call: (...a: data.ExpressionData[]) => data.ExpressionData;
};

function statusFunctions(status: Status): Fn[] {
  const b = (v: boolean) => () => new data.BooleanData(v);
  return [
    {
      name: 'success',
      minArgs: 0,
      maxArgs: 0,
      call: b(!status.failed && !status.cancelled && !status.blocked),
    },
    { name: 'failure', minArgs: 0, maxArgs: 0, call: b(status.failed) },
    { name: 'always', minArgs: 0, maxArgs: 0, call: b(true) },
    { name: 'cancelled', minArgs: 0, maxArgs: 0, call: b(status.cancelled) },
    {
      name: 'hashFiles',
      minArgs: 1,
      maxArgs: 255,
      call: () => {
        throw new Error('hashFiles() is not modelled by the workflow harness');
      },
    },
  ];
}

export function evaluate(expr: string, ctx: ExprContext, status: Status): data.ExpressionData {
  const lexed = new Lexer(expr).lex();
  // @actions/expressions 0.3.61 unescapes only the first '' of a string literal
  // (value.replace("''", "'")); GitHub's runner unescapes every one.
  for (const tok of lexed.tokens as { lexeme: string; value?: unknown }[])
    if (typeof tok.value === 'string' && tok.lexeme.startsWith("'"))
      tok.value = tok.lexeme.slice(1, -1).replaceAll("''", "'");
  const fns = statusFunctions(status);
  const parsed = new Parser(lexed.tokens, CONTEXT_NAMES, fns).parse();
  const dict = JSON.parse(JSON.stringify(ctx), data.reviver) as data.Dictionary;
  return new Evaluator(parsed, dict, new Map(fns.map((f) => [f.name.toLowerCase(), f]))).evaluate();
}

export function truthy(d: data.ExpressionData): boolean {
  switch (d.kind) {
    case data.Kind.Null:
      return false;
    case data.Kind.Boolean:
      return (d as data.BooleanData).value;
    case data.Kind.Number: {
      const n = (d as data.NumberData).value;
      return n !== 0 && !Number.isNaN(n);
    }
    case data.Kind.String:
      return (d as data.StringData).value !== '';
    default:
      return true;
  }
}

/** Plain JSON of an expression result (objects and arrays as GitHub's toJSON would see them). */
export function plain(d: data.ExpressionData): unknown {
  return JSON.parse(JSON.stringify(d, data.replacer));
}

/** The string a template token evaluates to (`with:`, `env:`, `run:` values). */
export function tokenString(token: Token, ctx: ExprContext, status: Status): string {
  const v = tokenValue(token, ctx, status);
  if (v === undefined || v === null) return '';
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

/** A template token as a plain value, every expression evaluated. */
export function tokenValue(token: Token, ctx: ExprContext, status: Status): unknown {
  if (token === undefined || token === null) return undefined;
  switch (token.type) {
    case TT.String:
      return token.value;
    case TT.BasicExpression: {
      const r = evaluate(token.expr, ctx, status);
      return r.kind === data.Kind.Dictionary || r.kind === data.Kind.Array ? plain(r) : r.coerceString();
    }
    case TT.Boolean:
    case TT.Number:
      return token.value;
    case TT.Null:
      return null;
    case TT.Sequence:
      return token.seq.map((t: Token) => tokenValue(t, ctx, status));
    case TT.Mapping:
      return Object.fromEntries(
        token.map.map((kv: { key: Token; value: Token }) => [
          tokenString(kv.key, ctx, status),
          tokenValue(kv.value, ctx, status),
        ]),
      );
    default:
      throw new Error(`workflow harness: token type ${token.type} is not modelled`);
  }
}

/** Evaluates `${{ … }}` inside a plain string (action.yml defaults). */
export function interpolate(text: string, ctx: ExprContext, status: Status): string {
  return text.replace(/\$\{\{([\s\S]*?)\}\}/g, (_, e: string) =>
    evaluate(e.trim(), ctx, status).coerceString(),
  );
}
