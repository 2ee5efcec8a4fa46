import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Ajv, { type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import { ANY_ROUTE_PROBLEMS, CONNECTION_PROBLEMS, ROUTING_PROBLEMS } from '../../src/openapi/api-answers';

/**
 * Every response the tests receive is checked against the committed `openapi/openapi.json` (the file clients are
 * generated from, not the live document): the route and method must be described, the status must be one the
 * operation lists, the media type one it lists for that status, the body valid against its schema, and each declared
 * header valid (present when required). Paths and methods no route serves may only answer a routing problem.
 */
export const SPEC_FILE = join(__dirname, '..', '..', '..', 'openapi', 'openapi.json');

export interface ObservedResponse {
  method: string;
  /** The request path as sent, with or without a query string. */
  path: string;
  status: number;
  headers: Record<string, string | string[] | number | undefined>;
  /** The body as received; undefined when there was none. */
  text: string | undefined;
}

interface MediaType {
  schema?: object;
}

interface ResponseSpec {
  content?: Record<string, MediaType>;
  headers?: Record<string, { required?: boolean; schema?: object }>;
}

interface Operation {
  operationId?: string;
  responses: Record<string, ResponseSpec>;
}

interface Spec {
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, object> };
}

interface Route {
  template: string;
  pattern: RegExp;
  literalSegments: number;
  operations: Record<string, Operation>;
}

const SPEC_ID = 'openapi.json';

/** Served by Swagger on the Express adapter, outside Nest: the spec itself and its UI, never data. */
const DOCUMENTATION = /^\/(openapi\.json|openapi-ui\.json|docs-yaml|docs(\/.*)?)$/;

class ResponseValidator {
  private readonly ajv = new Ajv({ strict: false, allErrors: true });
  private readonly routes: Route[];
  private readonly compiled = new Map<object, ValidateFunction>();
  private readonly problem: ValidateFunction;

  constructor(spec: Spec) {
    addFormats(this.ajv);
    this.ajv.addSchema({ $id: SPEC_ID, components: toJsonSchema(spec.components) as object });
    this.problem = this.ajv.compile({ $ref: `${SPEC_ID}#/components/schemas/ProblemModel` });
    this.routes = Object.entries(spec.paths)
      .map(([template, operations]) => ({
        template,
        operations,
        literalSegments: template.split('/').filter((part) => part && !part.startsWith('{')).length,
        // Express matches case-insensitively and takes a trailing slash.
        pattern: new RegExp(
          `^${template
            .split(/\{[^}]+\}/)
            .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
            .join('[^/]+')}/?$`,
          'i',
        ),
      }))
      .sort((a, b) => b.literalSegments - a.literalSegments);
  }

  validate(res: ObservedResponse): void {
    const path = res.path.split('?')[0];
    if (DOCUMENTATION.test(path)) return;
    const where = `${res.method} ${path} → ${res.status}`;
    const context = `${where}: ${(res.text ?? '').slice(0, 400)}`;
    const mediaType = String(header(res, 'content-type') ?? '')
      .split(';')[0]
      .trim()
      .toLowerCase();
    const body = res.method === 'HEAD' || res.status === 204 ? undefined : res.text;

    // The HTTP server's own answers (a request it could not read) belong to no route.
    const problem = mediaType === 'application/problem+json' && body ? parseJson(body, context) : undefined;
    if (isProblemWithCode(problem, CONNECTION_PROBLEMS) && (problem as { instance?: unknown }).instance === undefined) {
      this.check(this.problem, problem, context);
      return;
    }

    const method = res.method === 'HEAD' ? 'get' : res.method.toLowerCase();
    const route = this.routes.find((candidate) => candidate.pattern.test(path));
    const operation = route?.operations[method];
    if (!operation) {
      // No route serves this: only a routing problem, or what any route answers before routing, may come back.
      assert.equal(
        mediaType,
        'application/problem+json',
        `${where}: no route of the spec serves this; the answer must be a problem: ${context}`,
      );
      if (body === undefined) return;
      this.check(this.problem, problem, context);
      assert.ok(
        isProblemWithCode(problem, [...ROUTING_PROBLEMS, ...ANY_ROUTE_PROBLEMS]),
        `${where}: no route of the spec serves this (an undocumented route?); got ${context}`,
      );
      return;
    }

    const label = `${operation.operationId ?? route.template} (${res.method} ${route.template})`;
    const answer = operation.responses[String(res.status)] ?? operation.responses.default;
    assert.ok(
      answer,
      `${label} answered ${res.status}, which the spec does not list (${Object.keys(operation.responses).join(', ')}): ${context}`,
    );

    for (const [name, declared] of Object.entries(answer.headers ?? {})) {
      const value = header(res, name);
      if (value === undefined) {
        assert.ok(!declared.required, `${label} ${res.status}: required header ${name} is missing`);
        continue;
      }
      if (declared.schema) {
        const typed = (declared.schema as { type?: string }).type === 'integer' ? Number(value) : String(value);
        this.check(this.compile(declared.schema), typed, `${label} ${res.status} header ${name}=${String(value)}`);
      }
    }

    // An empty text body is the empty string, which a text answer's string schema admits (the log of a job still
    // queued); an empty JSON body is no body at all.
    const emptyText = body === '' && mediaType.startsWith('text/') && answer.content?.[mediaType] !== undefined;
    if (body === undefined || (body === '' && !emptyText)) {
      assert.ok(
        !answer.content || res.method === 'HEAD' || res.status === 204,
        `${label} ${res.status}: the spec describes a body, none came`,
      );
      return;
    }
    assert.ok(answer.content, `${label} ${res.status}: a body came, the spec describes none: ${context}`);
    const media = answer.content[mediaType];
    assert.ok(
      media,
      `${label} ${res.status}: Content-Type ${mediaType || '(none)'} is not one the spec lists (${Object.keys(answer.content).join(', ')}): ${context}`,
    );
    if (!media.schema) return;
    const value = /json$/.test(mediaType) ? parseJson(body, context) : body;
    this.check(this.compile(media.schema), value, `${label} ${res.status}: ${context}`);
  }

  private compile(schema: object): ValidateFunction {
    let validate = this.compiled.get(schema);
    if (!validate) {
      validate = this.ajv.compile(toJsonSchema(schema) as object);
      this.compiled.set(schema, validate);
    }
    return validate;
  }

  private check(validate: ValidateFunction, value: unknown, context: string): void {
    if (validate(value)) return;
    const errors = (validate.errors ?? [])
      .slice(0, 8)
      .map((error) => `${error.instancePath || '/'} ${error.message ?? ''} ${JSON.stringify(error.params)}`)
      .join('; ');
    assert.fail(`response does not match the spec: ${errors}\n  ${context}`);
  }
}

/**
 * OpenAPI 3.0 schema → JSON Schema for Ajv: `$ref`s point into the spec registered under `openapi.json`, `nullable`
 * becomes "or null" (also through `allOf` and `enum`, which `nullable` alone does not widen), and `discriminator`
 * goes (Ajv does not take its `mapping`; `oneOf` decides the same since each branch's `kind` is one value).
 */
function toJsonSchema(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(toJsonSchema);
  if (!node || typeof node !== 'object') return node;
  const entries = Object.entries(node as Record<string, unknown>)
    .filter(([key]) => key !== 'discriminator' && key !== 'nullable' && key !== 'example')
    .map(([key, value]): [string, unknown] => {
      if (key === '$ref' && typeof value === 'string' && value.startsWith('#/')) return [key, `${SPEC_ID}${value}`];
      if (key === 'properties' || key === 'headers')
        return [
          key,
          Object.fromEntries(Object.entries(value as object).map(([name, child]) => [name, toJsonSchema(child)])),
        ];
      return [key, toJsonSchema(value)];
    });
  const schema = Object.fromEntries(entries);
  return (node as { nullable?: unknown }).nullable === true ? { anyOf: [{ type: 'null' }, schema] } : schema;
}

function header(res: ObservedResponse, name: string): string | number | undefined {
  const value = res.headers[name.toLowerCase()] ?? res.headers[name];
  return Array.isArray(value) ? value.join(', ') : value;
}

function parseJson(text: string, context: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    assert.fail(`the body is not JSON: ${context}`);
  }
}

function isProblemWithCode(value: unknown, codes: readonly string[]): boolean {
  return typeof value === 'object' && value !== null && codes.includes((value as { code?: string }).code ?? '');
}

let shared: ResponseValidator | undefined;

/** Throws an AssertionError when the response is not one the committed spec describes. */
export function validateResponse(res: ObservedResponse): void {
  shared ??= new ResponseValidator(JSON.parse(readFileSync(SPEC_FILE, 'utf8')) as Spec);
  shared.validate(res);
}

/**
 * `fetch` (as called with a URL and init, or with a Request as openapi-fetch does), with the answer checked against
 * the spec; the body is read once and handed back intact.
 */
export async function checkedFetch(input: string | URL | Request, init?: RequestInit): Promise<Response> {
  const request = new Request(input, init);
  const res = await fetch(request);
  const text = await res.text();
  validateResponse({
    method: request.method.toUpperCase(),
    path: new URL(request.url).pathname,
    status: res.status,
    headers: Object.fromEntries(res.headers.entries()),
    text: text === '' ? undefined : text,
  });
  return new Response(text === '' || res.status === 204 ? null : text, {
    status: res.status,
    statusText: res.statusText,
    headers: res.headers,
  });
}
