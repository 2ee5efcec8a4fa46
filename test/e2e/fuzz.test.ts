import Database from 'better-sqlite3';
import fc from 'fast-check';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { brotliDecompressSync, gunzipSync, inflateSync } from 'node:zlib';
import { after, before, describe, it } from 'node:test';
import { CATALOG_FILE } from '../../src/catalog/catalog.service';
import { ProcessRunner } from '../../src/common/process/process-runner';
import {
  assertProblemShape,
  listRoutes,
  RawClient,
  routeKey,
  sampleParam,
  type ApiRoute,
  type OpenApiSchema,
  type RawResponse,
} from '../support/routes';
import { makeSites } from '../support/sample-sites';
import { startTestApp, TOKENS, type TestApp } from '../support/test-app';

/** Fixed, so a failure replays; override with FUZZ_SEED / FUZZ_RUNS to explore further. */
const SEED = Number(process.env.FUZZ_SEED ?? 20261126);
const RUNS_PER_ROUTE = Number(process.env.FUZZ_RUNS ?? 600);
const BODY_LIMIT_BYTES = 64 * 1024;
/** Each applicable fault must have been tried this often on each route (fewer when FUZZ_RUNS is lowered). */
const MIN_PER_FAULT = Math.min(5, Math.floor(RUNS_PER_ROUTE / 100));

/** The one thing each generated request is guaranteed to get wrong; everything else about it is noise. */
type Fault =
  'auth' | 'content-type' | 'malformed-json' | 'content-encoding' | 'body' | 'query' | 'path' | 'idempotency-key';

interface FuzzCase {
  fault: Fault;
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string | Buffer;
}

/** References that name something that exists: a hostile parameter must never be one of them. */
const EXISTING = new Set(['site1', 'example.com', 'admin1', 'backups.automatic-database-exports']);
const JSON_TYPES = ['application/json', 'application/json; charset=utf-8', 'application/merge-patch+json'];
const POLLUTION_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf'];

// ---------------------------------------------------------------------------------------------------------------
// Generators

const junkString = fc.oneof(
  fc.string({ unit: 'grapheme', maxLength: 40 }),
  fc.string({ unit: 'binary', maxLength: 20 }),
  fc.constantFrom("'; DROP TABLE jobs; --", '$(id)', '`id`', '| id', '${7*7}', '../../etc/passwd', '\u0000', '\u202e'),
);
const junkJson: fc.Arbitrary<unknown> = fc.oneof(
  { depthSize: 'small' },
  fc.jsonValue({ maxDepth: 3 }),
  junkString,
  fc.constantFrom(1e308, -1e308, 2 ** 53 + 1, -0, 0.1, Number.MAX_SAFE_INTEGER * 10),
);

/** JSON text used as is inside a generated body (a nesting too deep for JSON.stringify itself). */
class RawJson {
  constructor(readonly text: string) {}
}

/** Serialises entries as a JSON object, keeping `__proto__` as a plain key (an object literal would not). */
function objectJson(entries: Array<[string, unknown]>): string {
  const encode = (value: unknown) => (value instanceof RawJson ? value.text : (JSON.stringify(value) ?? 'null'));
  return `{${entries.map(([key, value]) => `${JSON.stringify(key)}:${encode(value)}`).join(',')}}`;
}

function safeDecode(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    return segment;
  }
}

/** A path segment, already as it goes on the wire, that no route parameter accepts as an existing thing. */
const hostileSegment: fc.Arbitrary<string> = fc
  .oneof(
    fc.constantFrom(
      '..',
      '.',
      '%2e%2e',
      '%2E%2E',
      '.%2e',
      '..%2f..%2fetc%2fpasswd',
      '%252e%252e%252f',
      '..%5c..%5cwindows',
      '%c0%ae%c0%ae',
      '....%2f%2f',
      '..;',
      '%2f',
      '%2fetc%2fpasswd',
      'site1%2f..%2fsite2',
    ),
    fc.constantFrom('%00', 'site1%00', '%00site1', 'site1%00.example.com', '%0a', '%0d%0a', '%09', '%20', 'site1%20'),
    fc.constantFrom('%', '%z', '%zz', '%e2%82', '%c3', '%ff%fe', '%%', '%u0041'),
    fc.integer({ min: 254, max: 6000 }).map((n) => 'a'.repeat(n)),
    fc.integer({ min: 10, max: 60 }).map((n) => `site${'9'.repeat(n)}`),
    fc.constantFrom('site0', 'site-1', 'site01', 'site1.', '.site1', 'site1..example.com', `${'a'.repeat(64)}.com`),
    fc.string({ unit: 'grapheme', minLength: 1, maxLength: 30 }).map(encodeURIComponent),
    fc
      .constantFrom('ѕite1', 'site１', 'ｅxample.com', 'example.com\u200b', 'xn--80ak6aa92e.com\u0301')
      .map(encodeURIComponent),
    fc
      .constantFrom(
        "'; DROP TABLE jobs; --",
        "' OR '1'='1",
        '$(id)',
        '`id`',
        '| id',
        '; rm -rf /',
        '${7*7}',
        '{{7*7}}',
        '<script>alert(1)</script>',
        '%s%s%n',
        '\\..\\..',
        '*',
        '?x=1',
        '#frag',
      )
      .map(encodeURIComponent),
  )
  .chain((first) =>
    fc.oneof(
      fc.constant(first),
      fc.constantFrom('..', '%00', '$(id)', '%2f', encodeURIComponent('`id`')).map((second) => first + second),
    ),
  )
  .filter((segment) => segment.length > 0 && !EXISTING.has(safeDecode(segment).toLowerCase()));

function validParam(route: ApiRoute, name: string): fc.Arbitrary<string> {
  const documented = route.operation?.parameters?.find((p) => p.in === 'path' && p.name === name);
  const options = [fc.constant(sampleParam(name, documented))];
  if (name === 'site') options.push(fc.constantFrom('example.com', 'SITE1', 'site2', 'admin1'));
  if (name === 'id' || documented?.schema?.format === 'uuid') options.push(fc.uuid());
  return fc.oneof(...options).map(encodeURIComponent);
}

function pathArb(route: ApiRoute, hostile: boolean): fc.Arbitrary<string> {
  if (route.pathParams.length === 0) return fc.constant(route.path);
  const values = route.pathParams.map((name) => fc.oneof(validParam(route, name), hostileSegment));
  const forced = fc.nat({ max: route.pathParams.length - 1 });
  return fc.tuple(fc.tuple(...values), forced, hostileSegment).map(([chosen, index, bad]) => {
    const filled = [...chosen];
    if (hostile) filled[index] = bad;
    let next = 0;
    return route.path.replace(/:(\w+)/g, () => filled[next++]);
  });
}

/** A well-formed value for a documented schema, or undefined when the spec says too little to make one. */
function validValue(schema: OpenApiSchema): fc.Arbitrary<unknown> | undefined {
  if (schema.enum?.length) return fc.constantFrom(...schema.enum);
  if (schema.example !== undefined) return fc.constant(schema.example);
  if (schema.type === 'boolean') return fc.boolean();
  if (schema.type === 'integer' || schema.type === 'number')
    return fc.integer({ min: schema.minimum ?? 1, max: schema.maximum ?? 100 });
  return undefined;
}

/** A value of the wrong type (never null: optional fields accept it) for a documented schema. */
function wrongValue(schema: OpenApiSchema): fc.Arbitrary<unknown> | undefined {
  const object = fc.dictionary(fc.string({ maxLength: 8 }), junkJson, { maxKeys: 4 });
  const notString = fc.oneof(fc.integer(), fc.double(), fc.boolean(), object, fc.array(junkJson, { maxLength: 4 }));
  if (schema.enum?.length) {
    const values = schema.enum.map(String);
    return fc.oneof(
      notString,
      junkString.filter((value) => !values.includes(value)),
      fc.constantFrom(...values).map((value) => [value]),
      fc.constantFrom(...values).map((value) => ` ${value.toUpperCase()}\u0000`),
    );
  }
  switch (schema.type) {
    case 'string':
      return notString;
    case 'boolean':
      return fc.oneof(fc.constantFrom('true', 'false', '1', '', 'yes'), fc.integer({ min: 0, max: 1 }), object);
    case 'integer':
    case 'number':
      return fc.oneof(
        fc.constantFrom('1', 'NaN', '1e400', ''),
        fc.boolean(),
        object,
        ...(schema.maximum !== undefined ? [fc.integer({ min: schema.maximum + 1 })] : []),
        ...(schema.minimum !== undefined ? [fc.integer({ max: schema.minimum - 1 })] : []),
      );
    case 'array':
      return fc.oneof(
        junkString,
        object,
        fc.integer(),
        fc.array(fc.oneof(fc.integer(), fc.boolean(), object, fc.array(junkString, { maxLength: 2 })), {
          minLength: 1,
          maxLength: 4,
        }),
      );
    case 'object':
      return fc.oneof(junkString, fc.integer(), fc.array(junkJson, { maxLength: 3 }));
    default:
      return undefined;
  }
}

/** A body the route's DTO would accept as far as the spec tells, as ordered entries. */
function baseEntries(schema: OpenApiSchema): fc.Arbitrary<Array<[string, unknown]>> {
  const properties = Object.entries(schema.properties ?? {}).flatMap(([key, property]) => {
    const value = validValue(property);
    return value ? [{ key, value, required: schema.required?.includes(key) ?? false }] : [];
  });
  if (properties.length === 0) return fc.constant([]);
  return fc
    .tuple(
      ...properties.map(({ key, value, required }) =>
        fc.tuple(fc.constant(key), value, fc.boolean(), fc.constant(required)),
      ),
    )
    .map((entries) => entries.filter(([, , keep, required]) => keep || required).map(([key, value]) => [key, value]));
}

function nested(depth: number): RawJson {
  let open = '';
  let close = '';
  for (let i = 0; i < depth; i++) {
    open += i % 2 ? '[' : '{"n":';
    close = (i % 2 ? ']' : '}') + close;
  }
  return new RawJson(`${open}1${close}`);
}

/** JSON text that violates the route's body DTO (or the transport's limits) in at least one way. */
function invalidBody(schema: OpenApiSchema): fc.Arbitrary<string> {
  const base = baseEntries(schema);
  const unknownKey = fc.oneof(
    { arbitrary: fc.constantFrom(...POLLUTION_KEYS), weight: 3 },
    fc.string({ unit: 'grapheme', minLength: 1, maxLength: 12 }).map((key) => `zz${key}`),
    fc.constantFrom('__fuzz', 'x-extra', '', ' ', '\u0000', 'level ', 'LEVEL'),
  );
  const wrongTyped = Object.entries(schema.properties ?? {}).flatMap(([key, property]) => {
    const wrong = wrongValue(property);
    return wrong ? [fc.tuple(fc.constant(key), wrong)] : [];
  });
  const required = schema.required?.filter((key) => schema.properties?.[key]) ?? [];
  const violations: Array<fc.WeightedArbitrary<string>> = [];
  const add = (weight: number, arbitrary: fc.Arbitrary<string>) => violations.push({ weight, arbitrary });
  // An unknown property, prototype-pollution keys included.
  const pollution = fc.oneof(
    junkJson,
    fc.constant({ fuzzPolluted: true }),
    fc.constant({ prototype: { fuzzPolluted: true } }),
  );
  add(
    3,
    fc
      .tuple(base, unknownKey, pollution)
      .filter(
        ([entries, key]) => !entries.some(([existing]) => existing === key) && !(key in (schema.properties ?? {})),
      )
      .map(([entries, key, value]) => objectJson([...entries, [key, value]])),
  );
  // An array where an object is expected.
  add(
    1,
    fc
      .tuple(base, fc.nat({ max: 3 }))
      .map(([entries, count]) => `[${Array(count).fill(objectJson(entries)).join(',')}]`),
  );
  // Larger than BODY_LIMIT.
  add(
    1,
    fc
      .tuple(
        base,
        fc.integer({ min: BODY_LIMIT_BYTES + 1, max: BODY_LIMIT_BYTES * 2 }),
        fc.constantFrom('x', 'é', '😀'),
      )
      .map(([entries, size, char]) =>
        objectJson([...entries, ['padding', char.repeat(Math.ceil(size / Buffer.byteLength(char)))]]),
      ),
  );
  // Nesting deep enough to overflow a recursive walker.
  add(
    1,
    fc
      .tuple(
        base,
        fc.integer({ min: 40, max: 20_000 }),
        fc.constantFrom(...Object.keys(schema.properties ?? {}), 'deep'),
      )
      .map(([entries, depth, key]) =>
        objectJson([...entries.filter(([existing]) => existing !== key), [key, nested(depth)]]),
      ),
  );
  if (wrongTyped.length > 0) {
    add(
      3,
      fc.tuple(base, fc.oneof(...wrongTyped), fc.boolean()).map(([entries, [key, value], duplicate]) =>
        duplicate
          ? // The same key twice: JSON.parse keeps the last, wrong one.
            objectJson([...entries, [key, value]])
          : objectJson([...entries.filter(([existing]) => existing !== key), [key, value]]),
      ),
    );
  }
  if (required.length > 0) {
    add(
      1,
      fc
        .tuple(base, fc.constantFrom(...required))
        .map(([entries, missing]) => objectJson(entries.filter(([key]) => key !== missing))),
    );
  }
  return fc.oneof(...violations);
}

/** Request bodies the JSON parser must refuse (strict: only objects and arrays at the top). */
const malformedJson: fc.Arbitrary<string> = fc
  .oneof(
    fc.constantFrom(
      '{',
      '}',
      '{"a":}',
      "{'level':'full'}",
      '{"level":"full",}',
      '{"a":NaN}',
      '{"a":undefined}',
      '{"a":01}',
      '{"a":"\\x41"}',
      '{"a":"\u0000"}',
      'null',
      'true',
      '1',
      '"full"',
      '{"a":1}{"b":2}',
      ' ',
      '\u0000',
      '[',
      '{"__proto__":',
      '{"a":1e}',
      '{"level":"full"',
    ),
    fc.jsonValue({ maxDepth: 3 }).chain((value) => {
      const text = JSON.stringify(value);
      return fc.nat({ max: Math.max(0, text.length - 1) }).map((cut) => text.slice(0, cut) + '\u0001');
    }),
    fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }),
  )
  .filter((text) => {
    try {
      const parsed: unknown = JSON.parse(text);
      return parsed === null || typeof parsed !== 'object';
    } catch {
      return true;
    }
  });

/** Header values Node's client can send (tab, printable ASCII, Latin-1), which the API must still refuse. */
const latin1Junk = fc.string({
  unit: fc.oneof(
    fc.integer({ min: 0x20, max: 0x7e }).map((code) => String.fromCharCode(code)),
    fc.integer({ min: 0xa0, max: 0xff }).map((code) => String.fromCharCode(code)),
  ),
  minLength: 1,
  maxLength: 40,
});

const badAuthorization: fc.Arbitrary<string | undefined> = fc.oneof(
  fc.constant(undefined),
  fc.constantFrom('Bearer', 'Bearer ', 'Bearer\t', 'Token', 'Basic', '', 'null'),
  fc
    .constantFrom(...Object.values(TOKENS))
    .chain((token) =>
      fc.constantFrom(
        token,
        `Bearer  ${token}`,
        `Bearer ${token} extra`,
        `Bearer ${token.slice(0, -1)}`,
        `Bearer ${token}x`,
        `Bearer "${token}"`,
        `Bearer ${token.toUpperCase()}`,
        `Bearer ${createHash('sha256').update(token).digest('hex')}`,
        `Basic ${Buffer.from(`user:${token}`).toString('base64')}`,
        `Token ${token}`,
        `Bearer ${token.slice(0, 4)}\u00e9${token.slice(5)}`,
        `Bearer ${token},Bearer ${token}`,
      ),
    ),
  fc.integer({ min: 513, max: 6000 }).map((n) => `Bearer ${'z'.repeat(n)}`),
  latin1Junk.map((junk) => `Bearer ${junk}`).filter((value) => !/^Bearer [\x21-\x7e]+$/.test(value)),
  latin1Junk.filter((value) => !value.startsWith('Bearer ')),
);

const badIdempotencyKey: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom('', ' ', 'a b', 'key\twith-tab', 'clé', '\u00ff'),
  fc.integer({ min: 256, max: 4000 }).map((n) => 'k'.repeat(n)),
  latin1Junk.map((junk) => `k${junk} k`),
);

const notJsonContentType: fc.Arbitrary<string | undefined> = fc.constantFrom(
  undefined,
  'text/plain',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=fuzz',
  'application/xml',
  'text/json',
  'application/jsonp',
  'application/x-json',
  'json',
  ';;;',
  '*/*',
  'application/*',
  // (any utf-* charset is decoded, so utf-16 is JSON too)
  'application/json; charset=us-ascii',
  'application/json; charset=iso-8859-1',
  'application/json; charset=bogus',
  'application/json, text/plain',
  'application/octet-stream',
);

function invalidQuery(route: ApiRoute): fc.Arbitrary<string> {
  const unknown = fc
    .tuple(
      fc.oneof(
        fc.constantFrom(...POLLUTION_KEYS, 'limit[]', 'zz', '', 'LIMIT'),
        fc.string({ unit: 'grapheme', minLength: 1, maxLength: 10 }).map((key) => `zz${key}`),
      ),
      junkString,
    )
    .filter(([key]) => !route.queryParams.some((param) => param.name === key))
    .map(([key, value]) => `${encodeURIComponent(key)}=${encodeURIComponent(value)}`);
  const typed = route.queryParams.flatMap((param) => {
    const schema = param.schema ?? {};
    const pairs: Array<fc.Arbitrary<string>> = [];
    if (schema.type === 'number' || schema.type === 'integer') {
      pairs.push(
        fc
          .oneof(
            fc.integer({ max: (schema.minimum ?? 1) - 1 }).map(String),
            fc.integer({ min: (schema.maximum ?? 500) + 1 }).map(String),
            fc.constantFrom('1.5', '1e400', '-0.5', 'NaN', 'Infinity', 'abc', '١', '1,2', '9'.repeat(400), '0x'),
          )
          .map((value) => `${param.name}=${encodeURIComponent(value)}`),
      );
    }
    if (schema.enum?.length) {
      const values = schema.enum.map(String);
      pairs.push(
        junkString
          .filter((value) => !values.includes(value))
          .map((value) => `${param.name}=${encodeURIComponent(value)}`),
      );
    }
    const sample = validValue(schema);
    if (sample) {
      // A repeated key arrives as an array.
      pairs.push(
        fc
          .tuple(sample, sample)
          .map(
            ([a, b]) => `${param.name}=${encodeURIComponent(String(a))}&${param.name}=${encodeURIComponent(String(b))}`,
          ),
      );
    }
    return pairs;
  });
  const noise = validQuery(route);
  return fc.tuple(noise, fc.oneof(unknown, ...typed)).map(([valid, bad]) => [valid, bad].filter(Boolean).join('&'));
}

/** Well-formed query pairs for the documented parameters (noise around the real fault). */
function validQuery(route: ApiRoute): fc.Arbitrary<string> {
  const pairs = route.queryParams.flatMap((param) => {
    const value = param.schema ? validValue(param.schema) : undefined;
    return value
      ? [
          fc.option(
            value.map((v) => `${param.name}=${encodeURIComponent(String(v))}`),
            { nil: '' },
          ),
        ]
      : [];
  });
  return pairs.length === 0 ? fc.constant('') : fc.tuple(...pairs).map((parts) => parts.filter(Boolean).join('&'));
}

function faultsFor(route: ApiRoute): Fault[] {
  const faults: Fault[] = ['content-type', 'malformed-json', 'content-encoding'];
  if (!route.isPublic) faults.push('auth');
  if (route.bodySchema) faults.push('body');
  if (route.queryParams.length > 0) faults.push('query');
  if (route.pathParams.length > 0) faults.push('path');
  if (route.idempotent) faults.push('idempotency-key');
  return faults;
}

/** One request for the route that gets `fault` wrong and anything else right or wrong. */
function caseArb(route: ApiRoute): fc.Arbitrary<FuzzCase> {
  const validBody = route.bodySchema ? baseEntries(route.bodySchema).map(objectJson) : fc.constant(undefined);
  const noiseHeaders = fc.record(
    {
      'x-request-id': fc.oneof(fc.uuid(), latin1Junk),
      accept: fc.constantFrom('*/*', 'application/xml', 'text/html', 'application/problem+json', ''),
      'idempotency-key': fc.uuid(),
    },
    { requiredKeys: [] },
  );
  // Input faults reach deeper than transport ones: give them more of the runs.
  const deep: Fault[] = ['body', 'query', 'path'];
  const fault = fc.oneof(
    ...faultsFor(route).map((f) => ({ arbitrary: fc.constant(f), weight: deep.includes(f) ? 3 : 1 })),
  );
  return fault.chain((fault) =>
    fc
      .record({
        token: fc.constantFrom(...Object.values(TOKENS)),
        path: pathArb(route, fault === 'path'),
        query: fault === 'query' ? invalidQuery(route) : validQuery(route),
        noise: noiseHeaders,
        body: validBody,
        authorization: badAuthorization,
        contentType: notJsonContentType,
        jsonType: fc.constantFrom(...JSON_TYPES),
        malformed: malformedJson,
        invalid: route.bodySchema ? invalidBody(route.bodySchema) : fc.constant('{}'),
        encoding: fc.constantFrom('gzip', 'deflate', 'br', 'compress', 'x-fuzz', 'gzip, gzip', 'identity, gzip'),
        idempotencyKey: badIdempotencyKey,
        otherBody: fc.oneof(
          junkString.filter((s) => s.length > 0),
          fc.jsonValue({ maxDepth: 2 }).map((v) => JSON.stringify(v)),
        ),
      })
      .map((parts): FuzzCase => {
        const headers: Record<string, string> = { ...parts.noise, authorization: `Bearer ${parts.token}` };
        let body: string | undefined = parts.body;
        if (body !== undefined) headers['content-type'] = parts.jsonType;
        switch (fault) {
          case 'auth':
            if (parts.authorization === undefined) delete headers.authorization;
            else headers.authorization = parts.authorization;
            break;
          case 'content-type':
            body = body ?? parts.otherBody;
            if (parts.contentType === undefined) delete headers['content-type'];
            else headers['content-type'] = parts.contentType;
            break;
          case 'malformed-json':
            body = parts.malformed;
            headers['content-type'] = parts.jsonType;
            break;
          case 'content-encoding':
            body = body ?? parts.otherBody;
            headers['content-type'] = parts.jsonType;
            headers['content-encoding'] = parts.encoding;
            break;
          case 'body':
            body = parts.invalid;
            headers['content-type'] = parts.jsonType;
            break;
          case 'idempotency-key':
            headers['idempotency-key'] = parts.idempotencyKey;
            break;
        }
        return {
          fault,
          method: route.method,
          path: parts.query ? `${parts.path}?${parts.query}` : parts.path,
          headers,
          body,
        };
      })
      // Some short byte strings are whole brotli (or even gzip) streams of nothing: those are valid empty bodies.
      .filter((c) => c.fault !== 'content-encoding' || !decompresses(c.headers['content-encoding'], c.body ?? '')),
  );
}

function decompresses(encoding: string, body: string | Buffer): boolean {
  const decoders: Record<string, (data: Buffer) => Buffer> = {
    gzip: gunzipSync,
    deflate: inflateSync,
    br: brotliDecompressSync,
  };
  const decode = decoders[encoding];
  if (!decode) return false;
  try {
    decode(Buffer.from(body));
    return true;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// What must not change

interface SideEffects {
  catalog: Record<string, string>;
  files: string[];
  runs: number;
}

function catalogDigest(db: Database.Database): Record<string, string> {
  const tables = db
    .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
    .all() as Array<{ name: string }>;
  return Object.fromEntries(
    tables
      // health_probe is rewritten by every readiness check.
      .filter(({ name }) => name !== 'health_probe')
      .map(({ name }) => {
        const rows = db.prepare(`SELECT * FROM "${name}"`).all();
        return [name, `${rows.length}:${createHash('sha256').update(JSON.stringify(rows)).digest('hex')}`];
      }),
  );
}

/** Every path (with size for plain files) under the roots, the catalog's own files aside. */
function fileList(roots: string[], catalogDir: string): string[] {
  const seen: string[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const full = join(dir, entry.name);
      if (dir === catalogDir && entry.name.startsWith(CATALOG_FILE)) {
        // Only the catalog itself and its WAL/SHM may be there; their sizes change with checkpoints.
        seen.push(`${full} (catalog)`);
        continue;
      }
      if (entry.isDirectory()) {
        seen.push(`${full}/`);
        walk(full);
      } else {
        seen.push(`${full} ${entry.isFile() ? statSync(full).size : 'link'}`);
      }
    }
  };
  roots.forEach(walk);
  return seen.sort();
}

function describeCase(c: FuzzCase): string {
  const body =
    c.body === undefined ? '' : ` body(${Buffer.byteLength(c.body)} B)=${JSON.stringify(String(c.body).slice(0, 300))}`;
  const headers = Object.fromEntries(
    Object.entries(c.headers).map(([k, v]) => [k, v.length > 120 ? `${v.slice(0, 120)}…(${v.length})` : v]),
  );
  const path = c.path.length > 300 ? `${c.path.slice(0, 300)}…(${c.path.length})` : c.path;
  return `[${c.fault}] ${c.method} ${path} ${JSON.stringify(headers)}${body}`;
}

describe('fuzz: every route refuses invalid requests cleanly', () => {
  let t: TestApp;
  let client: RawClient;
  let routes: ApiRoute[];
  let catalog: Database.Database;
  let runs = 0;
  const restoreRun: Array<() => void> = [];
  const counts = new Map<string, Map<Fault, number>>();

  const sideEffects = (): SideEffects => ({
    catalog: catalogDigest(catalog),
    files: fileList([t.config.dataDir, t.config.virtualRoot], t.config.dataDir),
    runs,
  });

  before(async () => {
    t = await startTestApp({ LOG_LEVEL: 'warn' });
    makeSites(t.config.virtualRoot, [{ n: 1, domain: 'example.com' }]);
    mkdirSync(join(t.config.virtualRoot, 'site1', 'shadow', 'var', 'www'), { recursive: true });
    writeFileSync(join(t.config.virtualRoot, 'site1', 'shadow', 'var', 'www', 'index.html'), '<h1>site1</h1>\n');
    // Every child process goes through ProcessRunner.run: count the calls on the prototype, whichever instance.
    const original = Object.getOwnPropertyDescriptor(ProcessRunner.prototype, 'run')!;
    ProcessRunner.prototype.run = function (this: ProcessRunner, ...args: Parameters<ProcessRunner['run']>) {
      runs++;
      return (original.value as ProcessRunner['run']).apply(this, args);
    };
    restoreRun.push(() => Object.defineProperty(ProcessRunner.prototype, 'run', original));
    client = await RawClient.listen(t.app);
    routes = listRoutes(t.app);
    catalog = new Database(join(t.config.dataDir, CATALOG_FILE), { readonly: true, fileMustExist: true });
  });
  after(async () => {
    restoreRun.forEach((restore) => restore());
    catalog?.close();
    client?.close();
    await t?.close();
  });

  it('never a 5xx; every 4xx is problem+json; nothing written, stored or spawned', async (ctx) => {
    assert.ok(routes.length >= 20, `route list: ${routes.map(routeKey).join(', ')}`);
    let baseline = sideEffects();
    let total = 0;
    const started = Date.now();
    for (const [index, route] of routes.entries()) {
      await ctx.test(routeKey(route), async () => {
        const perFault = new Map<Fault, number>();
        counts.set(routeKey(route), perFault);
        await fc.assert(
          fc.asyncProperty(caseArb(route), async (c) => {
            perFault.set(c.fault, (perFault.get(c.fault) ?? 0) + 1);
            total++;
            const where = describeCase(c);
            let res: RawResponse;
            try {
              res = await client.send(c);
            } catch (error) {
              assert.fail(`no answer (${(error as Error).message}): ${where}`);
            }
            assert.ok(res.status < 500, `${res.status} ${res.text.slice(0, 300)}: ${where}`);
            for (const token of Object.values(TOKENS)) assert.ok(!res.text.includes(token), `token echoed: ${where}`);
            if (res.status < 400) {
              // Only a GET whose parameter happened to resolve may answer; what it read may be cached.
              baseline = sideEffects();
              assert.ok(route.method === 'GET' && c.fault === 'path', `${res.status} for an invalid request: ${where}`);
            } else {
              assertProblemShape(res);
              if (res.status === 401) assert.match(String(res.headers['www-authenticate']), /^Bearer/, where);
              const now = sideEffects();
              assert.deepEqual(now.catalog, baseline.catalog, `catalog changed: ${where}`);
              assert.deepEqual(now.files, baseline.files, `files changed: ${where}`);
              assert.equal(now.runs, baseline.runs, `a child process was started: ${where}`);
            }
          }),
          { seed: SEED + index, numRuns: RUNS_PER_ROUTE, endOnFailure: true, includeErrorInReport: true },
        );
      });
    }
    ctx.diagnostic(`${total} requests over ${routes.length} routes in ${Date.now() - started} ms`);
  });

  it('exercised every applicable fault on every route', () => {
    for (const route of routes) {
      const perFault = counts.get(routeKey(route));
      assert.ok(perFault, `${routeKey(route)} fuzzed`);
      for (const fault of faultsFor(route)) {
        assert.ok(
          (perFault.get(fault) ?? 0) >= MIN_PER_FAULT,
          `${routeKey(route)}: ${fault} ${perFault.get(fault) ?? 0} times`,
        );
      }
    }
  });

  it('left no trace: no job, no polluted prototype, the service still ready', async () => {
    assert.equal(({} as Record<string, unknown>).fuzzPolluted, undefined, 'Object.prototype is not polluted');
    assert.equal(Object.prototype.hasOwnProperty.call(Object.prototype, 'fuzzPolluted'), false);
    const jobs = await client.send({
      method: 'GET',
      path: '/v1/jobs',
      headers: { authorization: `Bearer ${TOKENS.admin}` },
    });
    assert.equal(jobs.status, 200, jobs.text);
    assert.deepEqual(JSON.parse(jobs.text).items, []);
    const ready = await client.send({ method: 'GET', path: '/readyz' });
    assert.equal(ready.status, 200, ready.text);
    // The spy sees children: a valid providers read runs `duplicity --version`.
    const before = runs;
    const providers = await client.send({
      method: 'GET',
      path: '/v1/providers',
      headers: { authorization: `Bearer ${TOKENS.monitor}` },
    });
    assert.equal(providers.status, 200, providers.text);
    assert.ok(runs > before, 'ProcessRunner.run is counted');
  });
});

describe('regressions the fuzz found', () => {
  let t: TestApp;
  let client: RawClient;
  const send = (method: string, path: string, body?: string, headers: Record<string, string> = {}) =>
    client.send({
      method,
      path,
      body,
      headers: {
        authorization: `Bearer ${TOKENS.admin}`,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        ...headers,
      },
    });

  before(async () => {
    t = await startTestApp({ LOG_LEVEL: 'warn' });
    makeSites(t.config.virtualRoot, [{ n: 1, domain: 'example.com' }]);
    client = await RawClient.listen(t.app);
  });
  after(async () => {
    client.close();
    await t.close();
  });

  it('a body key that Nest or class-transformer drops is refused, not ignored (it used to export every site)', async () => {
    for (const body of ['{"prototype":{}}', '{"__proto__":{"x":1}}', '{"constructor":{"prototype":{}}}']) {
      const res = await send('POST', '/v1/exports', body);
      assert.equal(assertProblemShape(res, 400).code, 'validation-failed', body);
    }
    const backup = await send('POST', '/v1/sites/site1/backups', '{"level":"full","hasOwnProperty":1}');
    assert.match(
      assertProblemShape(backup, 400).detail,
      /body\.hasOwnProperty: property hasOwnProperty should not exist/,
    );
    const jobs = await send('GET', '/v1/jobs');
    assert.deepEqual(JSON.parse(jobs.text).items, [], 'no job started');
  });

  it('a query key that names an Object.prototype member is an unknown parameter', async () => {
    for (const key of ['hasOwnProperty', 'toString', '__proto__', 'constructor', 'prototype']) {
      assert.equal(assertProblemShape(await send('GET', `/v1/sites?${key}=1`), 400).code, 'validation-failed', key);
    }
  });

  it('a deeply nested body is a 400, not a stack overflow (500)', async () => {
    const deep = nested(5000).text;
    for (const [method, path] of [
      ['POST', '/v1/exports'],
      ['PUT', '/v1/scopes/backups.automatic-database-exports'],
      ['GET', '/v1/sites'],
    ]) {
      const res = await send(method, path, `{"sites":${deep}}`, { 'idempotency-key': 'deep-1' });
      assert.match(assertProblemShape(res, 400).detail, /nests deeper than 32 levels/, `${method} ${path}`);
    }
    // 32 levels still parse and reach validation.
    const res = await send('POST', '/v1/exports', `{"sites":${nested(31).text}}`);
    assert.equal(assertProblemShape(res, 400).code, 'validation-failed');
    assert.doesNotMatch(res.text, /nests deeper/);
  });

  it('a Content-Encoding over bytes that do not decompress is a 400 malformed-body, not a 500', async () => {
    for (const encoding of ['gzip', 'deflate', 'br']) {
      const res = await send('POST', '/v1/exports', '{"sites":["site1"]}', { 'content-encoding': encoding });
      assert.equal(assertProblemShape(res, 400).code, 'malformed-body', encoding);
    }
  });
});
