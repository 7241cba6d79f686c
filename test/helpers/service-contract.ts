/**
 * Checks one HTTP exchange with the Signet service against its committed OpenAPI 3.1 document:
 * the operation exists, the request's path/query/header parameters and JSON body match their
 * schemas, the response status is declared for the operation, its media type is declared, and a
 * JSON body matches the declared schema (JSON Schema 2020-12, through ajv — the validator
 * Fastify itself uses).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv2020, type ValidateFunction } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

// biome-ignore lint/suspicious/noExplicitAny: an OpenAPI document is untyped JSON
type Doc = any;

export const OPENAPI_PATH = join(import.meta.dirname, '..', '..', 'schema', 'service.openapi.json');

export interface Exchange {
  method: string;
  /** Path and query, as sent. */
  url: string;
  headers?: Record<string, string | undefined>;
  /** The JSON body sent, if any (undefined: none or not JSON). */
  json?: unknown;
  response: { status: number; headers: Record<string, unknown>; body: string };
}

export interface ContractResult {
  operation: string | undefined;
  request: string[];
  response: string[];
}

const pointer = (parts: string[]) =>
  `#/${parts.map((p) => p.replace(/~/g, '~0').replace(/\//g, '~1')).join('/')}`;

export class ServiceContract {
  readonly doc: Doc;
  private ajv: Ajv2020;
  private cache = new Map<string, ValidateFunction>();
  /** operationId → statuses seen. */
  readonly seen = new Map<string, Set<number>>();

  constructor(doc: Doc = JSON.parse(readFileSync(OPENAPI_PATH, 'utf8'))) {
    this.doc = doc;
    this.ajv = new Ajv2020({ strict: false, allErrors: true, validateFormats: true });
    (addFormats as unknown as (a: unknown) => void)(this.ajv);
    this.ajv.addFormat('binary', true);
    this.ajv.addSchema({ ...doc, $id: 'openapi' });
  }

  private validator(parts: string[]) {
    const ref = `openapi${pointer(parts)}`;
    let v = this.cache.get(ref);
    if (!v) {
      v = this.ajv.compile({ $ref: ref });
      this.cache.set(ref, v);
    }
    return v;
  }

  private errorsOf(parts: string[], value: unknown, where: string): string[] {
    const v = this.validator(parts);
    if (v(value)) return [];
    return (v.errors ?? []).map((e) => `${where}${e.instancePath} ${e.message} ${JSON.stringify(e.params)}`);
  }

  /** The path template and operation for a method and concrete path. */
  find(method: string, path: string): { template: string; params: Record<string, string> } | undefined {
    const m = method.toLowerCase();
    const candidates = Object.keys(this.doc.paths).filter((t) => this.doc.paths[t][m]);
    // literal templates win over parameterised ones
    candidates.sort((a, b) => (a.match(/\{/g)?.length ?? 0) - (b.match(/\{/g)?.length ?? 0));
    for (const t of candidates) {
      const names: string[] = [];
      const re = new RegExp(
        `^${t.replace(/[.*+?^$()|[\]\\]/g, '\\$&').replace(/\{([^}]+)\}/g, (_s, n: string) => {
          names.push(n);
          return '([^/]+)';
        })}$`,
      );
      const hit = re.exec(path);
      if (hit) {
        const params: Record<string, string> = {};
        names.forEach((n, i) => {
          try {
            params[n] = decodeURIComponent(hit[i + 1]!);
          } catch {
            params[n] = hit[i + 1]!;
          }
        });
        return { template: t, params };
      }
    }
    return undefined;
  }

  check(x: Exchange): ContractResult {
    const u = new URL(x.url, 'http://service.invalid');
    const m = x.method.toLowerCase();
    const found = this.find(x.method, u.pathname);
    const request: string[] = [];
    const response: string[] = [];
    if (!found) {
      // an undocumented route must answer 404 in the error shape
      if (x.response.status !== 404)
        response.push(`undocumented ${x.method} ${u.pathname} answered ${x.response.status}`);
      if (x.method !== 'HEAD')
        response.push(
          ...this.errorsOf(['components', 'schemas', 'Error'], JSON.parse(x.response.body), 'body'),
        );
      return { operation: undefined, request, response };
    }
    const opParts = ['paths', found.template, m];
    const op = this.doc.paths[found.template][m];
    const id: string = op.operationId;
    if (!this.seen.has(id)) this.seen.set(id, new Set());
    this.seen.get(id)!.add(x.response.status);

    // request
    const params: { in: string; name: string; required?: boolean; schema: unknown }[] = op.parameters ?? [];
    params.forEach((p, i) => {
      const raw =
        p.in === 'path'
          ? found.params[p.name]
          : p.in === 'query'
            ? (u.searchParams.get(p.name) ?? undefined)
            : p.in === 'header'
              ? x.headers?.[p.name.toLowerCase()]
              : undefined;
      if (raw === undefined) {
        if (p.required) request.push(`${p.in}.${p.name} is required`);
        return;
      }
      const schema = p.schema as { type?: string };
      const value = schema.type === 'integer' && /^-?\d+$/.test(raw) ? Number(raw) : raw;
      request.push(
        ...this.errorsOf([...opParts, 'parameters', String(i), 'schema'], value, `${p.in}.${p.name}`),
      );
    });
    for (const k of u.searchParams.keys())
      if (!params.some((p) => p.in === 'query' && p.name === k)) request.push(`query.${k} is not declared`);
    const ctype = String(x.headers?.['content-type'] ?? '')
      .split(';')[0]!
      .trim();
    if (op.requestBody) {
      const content = op.requestBody.content ?? {};
      if (ctype && !content[ctype]) request.push(`content-type ${ctype} is not declared`);
      if (ctype === 'application/json' && content[ctype])
        request.push(
          ...this.errorsOf([...opParts, 'requestBody', 'content', ctype, 'schema'], x.json, 'body'),
        );
    } else if (x.json !== undefined) request.push('the operation takes no body');

    // response
    const status = String(x.response.status);
    const declared = op.responses?.[status] ?? op.responses?.default;
    if (!declared) {
      response.push(`status ${status} is not declared for ${id}`);
      return { operation: id, request, response };
    }
    const key = op.responses?.[status] ? status : 'default';
    const rtype = String(x.response.headers['content-type'] ?? '')
      .split(';')[0]!
      .trim();
    const hasBody = x.response.body.length > 0 && x.method !== 'HEAD';
    if (hasBody) {
      const content = declared.content ?? {};
      if (!content[rtype])
        response.push(`${id} ${status}: content-type ${rtype || '(none)'} is not declared`);
      else if (rtype === 'application/json') {
        let body: unknown;
        try {
          body = JSON.parse(x.response.body);
        } catch {
          response.push(`${id} ${status}: the body is not JSON`);
        }
        if (body !== undefined)
          response.push(
            ...this.errorsOf(
              ['paths', found.template, m, 'responses', key, 'content', rtype, 'schema'],
              body,
              'body',
            ),
          );
      }
    } else if (x.method !== 'HEAD' && declared.content && status !== '204' && status !== '304') {
      const types = Object.keys(declared.content);
      if (types.includes('application/json'))
        response.push(`${id} ${status}: an empty body where JSON is declared`);
    }
    return { operation: id, request, response };
  }

  /** Every operation of the document. */
  operations(): string[] {
    const out: string[] = [];
    for (const p of Object.values(this.doc.paths) as Record<string, { operationId: string }>[])
      for (const op of Object.values(p)) out.push(op.operationId);
    return out;
  }
}
