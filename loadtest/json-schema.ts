// A validator for the subset of JSON Schema (2020-12) that results.schema.json uses: type (one or
// a list), properties, required, additionalProperties (false or a schema), items, enum, const,
// minimum, maximum, minItems, and $ref to "#/$defs/NAME". Anything else in a schema is an error,
// so the schema cannot silently say more than is checked.
export interface SchemaProblem {
  /** JSON pointer of the value at fault, e.g. /scenarios/latency/steps/3/ok */
  path: string;
  message: string;
}

type Schema = Record<string, unknown>;

const ANNOTATIONS = new Set(['$schema', '$id', '$defs', 'title', 'description', '$comment', 'examples']);
const KEYWORDS = new Set(['type', 'properties', 'required', 'additionalProperties', 'items', 'enum', 'const', 'minimum', 'maximum', 'minItems', '$ref']);

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

function matchesType(value: unknown, type: string): boolean {
  const actual = typeOf(value);
  return actual === type || (type === 'number' && actual === 'integer');
}

export function validateJson(root: Schema, value: unknown): SchemaProblem[] {
  const problems: SchemaProblem[] = [];
  const resolve = (ref: string): Schema => {
    const match = /^#\/\$defs\/([A-Za-z0-9_]+)$/.exec(ref);
    const target = match ? (root.$defs as Record<string, Schema> | undefined)?.[match[1]!] : undefined;
    if (!target) throw new Error(`schema: unresolvable $ref ${ref}`);
    return target;
  };
  const check = (schema: Schema, current: unknown, path: string): void => {
    for (const key of Object.keys(schema)) if (!KEYWORDS.has(key) && !ANNOTATIONS.has(key)) throw new Error(`schema: unsupported keyword "${key}" at ${path || '/'}`);
    if (typeof schema.$ref === 'string') check(resolve(schema.$ref), current, path);
    const at = path || '/';
    if (schema.type !== undefined) {
      const types = Array.isArray(schema.type) ? (schema.type as string[]) : [schema.type as string];
      if (!types.some((type) => matchesType(current, type))) {
        problems.push({ path: at, message: `must be ${types.join(' or ')}, got ${typeOf(current)}` });
        return;
      }
    }
    if (schema.const !== undefined && JSON.stringify(schema.const) !== JSON.stringify(current)) problems.push({ path: at, message: `must be ${JSON.stringify(schema.const)}` });
    if (Array.isArray(schema.enum) && !schema.enum.some((option) => JSON.stringify(option) === JSON.stringify(current))) {
      problems.push({ path: at, message: `must be one of ${schema.enum.map((option) => JSON.stringify(option)).join(', ')}, got ${JSON.stringify(current)}` });
    }
    if (typeof current === 'number') {
      if (typeof schema.minimum === 'number' && current < schema.minimum) problems.push({ path: at, message: `must be >= ${schema.minimum}, got ${current}` });
      if (typeof schema.maximum === 'number' && current > schema.maximum) problems.push({ path: at, message: `must be <= ${schema.maximum}, got ${current}` });
    }
    if (Array.isArray(current)) {
      if (typeof schema.minItems === 'number' && current.length < schema.minItems) problems.push({ path: at, message: `must have at least ${schema.minItems} items, got ${current.length}` });
      if (schema.items !== undefined) current.forEach((item, index) => check(schema.items as Schema, item, `${path}/${index}`));
    }
    if (typeOf(current) === 'object') {
      const object = current as Record<string, unknown>;
      const properties = (schema.properties ?? {}) as Record<string, Schema>;
      for (const name of (schema.required ?? []) as string[]) if (!Object.hasOwn(object, name)) problems.push({ path: at, message: `must have property "${name}"` });
      for (const [name, item] of Object.entries(object)) {
        const where = `${path}/${name.replace(/~/g, '~0').replace(/\//g, '~1')}`;
        if (Object.hasOwn(properties, name)) check(properties[name]!, item, where);
        else if (schema.additionalProperties === false) problems.push({ path: where, message: 'is not allowed here' });
        else if (typeof schema.additionalProperties === 'object' && schema.additionalProperties !== null) check(schema.additionalProperties as Schema, item, where);
      }
    }
  };
  check(root, value, '');
  return problems;
}
