import 'reflect-metadata';
import type { INestApplication } from '@nestjs/common';
import { RequestMethod } from '@nestjs/common';
import { METHOD_METADATA, PATH_METADATA } from '@nestjs/common/constants';
import { DiscoveryService, MetadataScanner, ModulesContainer } from '@nestjs/core';
import type { OpenAPIObject } from '@nestjs/swagger';
import { randomUUID } from 'node:crypto';
import { Agent, request as httpRequest, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { PUBLIC_ROUTE, REQUIRED_ROLE } from '../../src/auth/auth.decorators';
import type { Role } from '../../src/auth/role';
import { buildOpenApiDocument } from '../../src/openapi/openapi';
import { validateResponse } from './openapi-validator';

export type HttpMethod = 'GET' | 'HEAD' | 'POST' | 'PUT' | 'PATCH' | 'DELETE' | 'OPTIONS';

/** The OpenAPI parts of one operation that the route tests read. */
export interface OpenApiParameter {
  name: string;
  in: 'path' | 'query' | 'header' | 'cookie';
  required?: boolean;
  schema?: OpenApiSchema;
}

export interface OpenApiSchema {
  type?: string;
  format?: string;
  enum?: unknown[];
  example?: unknown;
  items?: OpenApiSchema;
  properties?: Record<string, OpenApiSchema>;
  required?: string[];
  minimum?: number;
  maximum?: number;
  $ref?: string;
}

export interface OpenApiOperation {
  operationId?: string;
  parameters?: OpenApiParameter[];
  requestBody?: { content?: Record<string, { schema?: OpenApiSchema }> };
}

/** One HTTP route of the running application, as Nest mapped it, with its auth metadata and its documentation. */
export interface ApiRoute {
  method: HttpMethod;
  /** Express template: `/v1/sites/:site/backups`. */
  path: string;
  /** OpenAPI template: `/v1/sites/{site}/backups`. */
  template: string;
  pathParams: string[];
  controller: string;
  handler: string;
  /** `@RequireRole(...)` on the handler, else on the controller. */
  requiredRole: Role | undefined;
  /** `@Public()` on the handler or the controller. */
  isPublic: boolean;
  /** The generated OpenAPI operation; undefined when the route is missing from the spec. */
  operation: OpenApiOperation | undefined;
  /** The request body's schema with `$ref`s resolved, when the spec documents a JSON body. */
  bodySchema: OpenApiSchema | undefined;
  queryParams: OpenApiParameter[];
  /** The route documents an `Idempotency-Key` header. */
  idempotent: boolean;
}

/** `METHOD PATH` (Express template), the key routes are compared by. */
export function routeKey(route: { method: string; path: string }): string {
  return `${route.method.toUpperCase()} ${route.path}`;
}

/**
 * Every route the application's controllers map, read from Nest's own metadata (the same the router and the guard
 * use), joined with the generated OpenAPI document. New controllers are picked up without any list to maintain.
 * `DiscoveryService` is built by hand: asking the application for it when DiscoveryModule is not imported aborts.
 */
export function listRoutes(app: INestApplication, document: OpenAPIObject = buildOpenApiDocument(app)): ApiRoute[] {
  const discovery = new DiscoveryService(app.get(ModulesContainer));
  const scanner = new MetadataScanner();
  const routes: ApiRoute[] = [];
  for (const wrapper of discovery.getControllers()) {
    const controller = wrapper.metatype as (new (...args: never[]) => unknown) | null;
    if (!controller || !wrapper.instance) continue;
    const prototype = Object.getPrototypeOf(wrapper.instance) as Record<string, unknown>;
    const bases = asArray(Reflect.getMetadata(PATH_METADATA, controller) as string | string[] | undefined);
    for (const handlerName of scanner.getAllMethodNames(prototype)) {
      const handler = prototype[handlerName] as object;
      const subPaths = Reflect.getMetadata(PATH_METADATA, handler) as string | string[] | undefined;
      const methodCode = Reflect.getMetadata(METHOD_METADATA, handler) as RequestMethod | undefined;
      if (subPaths === undefined || methodCode === undefined) continue;
      const method = RequestMethod[methodCode] as HttpMethod;
      const requiredRole = (Reflect.getMetadata(REQUIRED_ROLE, handler) ??
        Reflect.getMetadata(REQUIRED_ROLE, controller)) as Role | undefined;
      const isPublic = Boolean(
        Reflect.getMetadata(PUBLIC_ROUTE, handler) ?? Reflect.getMetadata(PUBLIC_ROUTE, controller),
      );
      for (const base of bases.length > 0 ? bases : ['']) {
        for (const sub of asArray(subPaths)) {
          const path = joinPath(base, sub);
          const template = path.replace(/:(\w+)/g, '{$1}');
          const operation = (document.paths[template] as Record<string, OpenApiOperation> | undefined)?.[
            method.toLowerCase()
          ];
          const parameters = operation?.parameters ?? [];
          routes.push({
            method,
            path,
            template,
            pathParams: [...path.matchAll(/:(\w+)/g)].map((match) => match[1]),
            controller: controller.name,
            handler: handlerName,
            requiredRole,
            isPublic,
            operation,
            bodySchema: resolveSchema(document, operation?.requestBody?.content?.['application/json']?.schema),
            queryParams: parameters.filter((parameter) => parameter.in === 'query'),
            idempotent: parameters.some(
              (parameter) => parameter.in === 'header' && parameter.name.toLowerCase() === 'idempotency-key',
            ),
          });
        }
      }
    }
  }
  return routes.sort((a, b) => routeKey(a).localeCompare(routeKey(b)));
}

/** Every `METHOD template` of the generated OpenAPI document. */
export function documentedOperations(document: OpenAPIObject): string[] {
  return Object.entries(document.paths).flatMap(([template, operations]) =>
    Object.keys(operations)
      .filter((method) => ['get', 'head', 'post', 'put', 'patch', 'delete', 'options'].includes(method))
      .map((method) => `${method.toUpperCase()} ${template}`),
  );
}

/** Every route layer of the Express router (Nest's and any registered on the adapter directly). */
export function expressRoutes(app: INestApplication): Array<{ method: string; path: string }> {
  const express = app.getHttpAdapter().getInstance() as {
    router: { stack: Array<{ route?: { path: string; methods: Record<string, boolean> } }> };
  };
  return express.router.stack.flatMap((layer) =>
    layer.route
      ? Object.keys(layer.route.methods).map((method) => ({ method: method.toUpperCase(), path: layer.route!.path }))
      : [],
  );
}

/** A syntactically valid value for a path parameter, so that guards (not pipes) decide the answer. */
export function sampleParam(name: string, document?: OpenApiParameter): string {
  switch (name) {
    case 'site':
      return 'site1';
    case 'id':
      return randomUUID();
    case 'name':
      return 'backups.automatic-database-exports';
  }
  const schema = document?.schema;
  if (schema?.format === 'uuid') return randomUUID();
  if (typeof schema?.example === 'string' || typeof schema?.example === 'number') return String(schema.example);
  if (schema?.enum?.length) return String(schema.enum[0]);
  return randomUUID();
}

/**
 * The route's path with each parameter taken verbatim from `encodedValues` (already percent-encoded, or deliberately
 * not) or else from `sampleParam`, percent-encoded.
 */
export function fillPath(route: ApiRoute, encodedValues: Record<string, string> = {}): string {
  return route.path.replace(/:(\w+)/g, (_match, name: string) => {
    if (encodedValues[name] !== undefined) return encodedValues[name];
    const documented = route.operation?.parameters?.find(
      (parameter) => parameter.in === 'path' && parameter.name === name,
    );
    return encodeURIComponent(sampleParam(name, documented));
  });
}

export interface RawResponse {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
}

export interface RawRequest {
  method: string;
  /** Sent exactly as given: no normalisation of `..`, `%2e` or anything else. */
  path: string;
  headers?: OutgoingHttpHeaders;
  body?: string | Buffer;
}

/**
 * A minimal HTTP client on a listening application. Unlike supertest (which resolves `..` and `%2e%2e` through
 * WHATWG URL parsing before sending), it sends the path and the body bytes exactly as given.
 */
export class RawClient {
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 4 });

  private constructor(private readonly port: number) {}

  /** Makes the application listen on an ephemeral loopback port (after `init`) and returns a client for it. */
  static async listen(app: INestApplication): Promise<RawClient> {
    await app.listen(0, '127.0.0.1');
    return new RawClient((app.getHttpServer().address() as AddressInfo).port);
  }

  send(req: RawRequest): Promise<RawResponse> {
    return new Promise((resolve, reject) => {
      const headers: OutgoingHttpHeaders = { ...req.headers };
      if (req.body !== undefined) headers['content-length'] = Buffer.byteLength(req.body);
      const outgoing = httpRequest(
        { host: '127.0.0.1', port: this.port, method: req.method, path: req.path, headers, agent: this.agent },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => {
            const answer = {
              status: res.statusCode ?? 0,
              headers: res.headers,
              text: Buffer.concat(chunks).toString('utf8'),
            };
            try {
              validateResponse({ method: req.method, path: req.path, ...answer, text: answer.text || undefined });
            } catch (mismatch) {
              reject(mismatch instanceof Error ? mismatch : new Error(String(mismatch)));
              return;
            }
            resolve(answer);
          });
          res.on('error', reject);
        },
      );
      outgoing.on('error', reject);
      outgoing.end(req.body);
    });
  }

  close(): void {
    this.agent.destroy();
  }
}

/** An RFC 9457 body as this API writes it. */
export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  instance: string;
  [key: string]: unknown;
}

/** Asserts an `application/problem+json` answer with every RFC 9457 member (and this API's `code`); returns it. */
export function assertProblemShape(res: RawResponse, status?: number): ProblemBody {
  const context = `${res.status} ${res.text.slice(0, 500)}`;
  if (status !== undefined) assert.equal(res.status, status, context);
  assert.match(String(res.headers['content-type']), /^application\/problem\+json(;|$)/, context);
  let body: ProblemBody;
  try {
    body = JSON.parse(res.text) as ProblemBody;
  } catch {
    assert.fail(`not JSON: ${context}`);
  }
  assert.equal(typeof body, 'object', context);
  assert.equal(body.status, res.status, `status member: ${context}`);
  for (const member of ['type', 'title', 'detail', 'code', 'instance'] as const) {
    assert.equal(typeof body[member], 'string', `${member} member: ${context}`);
  }
  assert.ok(body.type === `urn:apiscp-backup-api:problem:${body.code}` || body.type === 'about:blank', context);
  assert.ok(body.instance.startsWith('/') && !body.instance.includes('?'), `instance: ${context}`);
  assert.ok(!/\n\s+at /.test(res.text), `no stack trace: ${context}`);
  return body;
}

function asArray<T>(value: T | T[] | undefined): T[] {
  return value === undefined ? [] : Array.isArray(value) ? value : [value];
}

function joinPath(base: string, sub: string): string {
  const joined = `/${[base, sub]
    .map((part) => part.replace(/^\/+|\/+$/g, ''))
    .filter(Boolean)
    .join('/')}`;
  return joined;
}

function resolveSchema(
  document: OpenAPIObject,
  schema: OpenApiSchema | undefined,
  depth = 0,
): OpenApiSchema | undefined {
  if (!schema || depth > 8) return schema;
  if (schema.$ref) {
    const name = schema.$ref.replace('#/components/schemas/', '');
    return resolveSchema(document, document.components?.schemas?.[name], depth + 1);
  }
  return {
    ...schema,
    ...(schema.items ? { items: resolveSchema(document, schema.items, depth + 1) } : {}),
    ...(schema.properties
      ? {
          properties: Object.fromEntries(
            Object.entries(schema.properties).map(([key, value]) => [key, resolveSchema(document, value, depth + 1)!]),
          ),
        }
      : {}),
  };
}
