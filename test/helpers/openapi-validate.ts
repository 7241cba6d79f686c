/**
 * A small JSON Schema validator for the subset the GitHub (OpenAPI 3.0) and Gitea (Swagger 2.0)
 * specs use for releases: $ref, type (+ OpenAPI `nullable`), properties, required,
 * additionalProperties, items, enum, allOf/anyOf/oneOf, and date-time/uri formats.
 */
// biome-ignore lint/suspicious/noExplicitAny: JSON schemas are untyped documents
export type Schema = any;

export interface ValidateOptions {
  /** The whole spec document, for resolving `#/...` references. */
  root: Schema;
  /** Report properties the schema does not declare (used for request bodies). */
  strictProperties?: boolean;
}

export function resolveRef(root: Schema, ref: string): Schema {
  if (!ref.startsWith('#/')) throw new Error(`unsupported $ref ${ref}`);
  let cur = root;
  for (const part of ref.slice(2).split('/')) {
    cur = cur?.[part.replace(/~1/g, '/').replace(/~0/g, '~')];
    if (cur === undefined) throw new Error(`unresolvable $ref ${ref}`);
  }
  return cur;
}

function typeOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  if (typeof v === 'number') return Number.isInteger(v) ? 'integer' : 'number';
  return typeof v;
}

export function validate(value: unknown, schema: Schema, options: ValidateOptions, path = '$'): string[] {
  if (schema === undefined || schema === true) return [];
  if (schema.$ref) return validate(value, resolveRef(options.root, schema.$ref), options, path);
  const errors: string[] = [];
  if (value === null) {
    if (
      schema.nullable ||
      schema['x-nullable'] ||
      schema.type === 'null' ||
      (Array.isArray(schema.type) && schema.type.includes('null'))
    )
      return [];
    if (schema.type || schema.properties) return [`${path}: null is not allowed`];
  }
  if (schema.allOf) for (const s of schema.allOf) errors.push(...validate(value, s, options, path));
  if (schema.anyOf && !schema.anyOf.some((s: Schema) => validate(value, s, options, path).length === 0))
    errors.push(`${path}: matches none of anyOf`);
  if (schema.oneOf) {
    const n = schema.oneOf.filter((s: Schema) => validate(value, s, options, path).length === 0).length;
    if (n !== 1) errors.push(`${path}: matches ${n} of oneOf (expected 1)`);
  }
  if (schema.enum && !schema.enum.includes(value))
    errors.push(`${path}: ${JSON.stringify(value)} not in enum ${JSON.stringify(schema.enum)}`);
  const types: string[] | undefined = schema.type
    ? Array.isArray(schema.type)
      ? schema.type
      : [schema.type]
    : undefined;
  const actual = typeOf(value);
  if (types && !types.includes(actual) && !(actual === 'integer' && types.includes('number'))) {
    errors.push(`${path}: expected ${types.join('|')}, got ${actual}`);
    return errors;
  }
  if (actual === 'string' && typeof value === 'string') {
    if (schema.format === 'date-time' && Number.isNaN(Date.parse(value)))
      errors.push(`${path}: not a date-time`);
    if (schema.format === 'uri' && !URL.canParse(value)) errors.push(`${path}: not a uri`);
    if (typeof schema.maxLength === 'number' && value.length > schema.maxLength)
      errors.push(`${path}: longer than ${schema.maxLength}`);
  }
  if (actual === 'object' && value && typeof value === 'object' && !Array.isArray(value)) {
    const obj = value as Record<string, unknown>;
    for (const r of schema.required ?? [])
      if (!(r in obj)) errors.push(`${path}: missing required property ${r}`);
    const props = schema.properties ?? {};
    for (const [k, v] of Object.entries(obj)) {
      if (k in props) errors.push(...validate(v, props[k], options, `${path}.${k}`));
      else if (
        schema.additionalProperties === false ||
        (options.strictProperties && schema.properties && !schema.additionalProperties)
      )
        errors.push(`${path}: unknown property ${k}`);
      else if (schema.additionalProperties && typeof schema.additionalProperties === 'object')
        errors.push(...validate(v, schema.additionalProperties, options, `${path}.${k}`));
    }
  }
  if (actual === 'array' && Array.isArray(value) && schema.items)
    for (const [i, item] of value.entries())
      errors.push(...validate(item, schema.items, options, `${path}[${i}]`));
  return errors;
}

/** Coerces a path/query string to the parameter's declared type and validates it. */
export function validateParam(raw: string, schema: Schema, options: ValidateOptions, path: string): string[] {
  const s = schema.$ref ? resolveRef(options.root, schema.$ref) : schema;
  let v: unknown = raw;
  if (s.type === 'integer' || s.type === 'number') {
    if (!/^-?\d+(\.\d+)?$/.test(raw)) return [`${path}: ${JSON.stringify(raw)} is not a number`];
    v = Number(raw);
  } else if (s.type === 'boolean') {
    if (raw !== 'true' && raw !== 'false') return [`${path}: ${JSON.stringify(raw)} is not a boolean`];
    v = raw === 'true';
  }
  return validate(v, s, options, path);
}
