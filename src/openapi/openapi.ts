import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, getSchemaPath, SwaggerModule, type OpenAPIObject } from '@nestjs/swagger';
import { ProblemModel } from '../common/errors/problem.model';
import { PROBLEM_CONTENT_TYPE } from '../common/errors/problem.filter';
import { JOB_MODELS_BY_KIND, JobModel } from '../jobs/job.model';

export const SPEC_TITLE = 'apiscp-backup-api';

/** Every tag the controllers use, described (linters want each tag declared once, with a description). */
const TAGS: Record<string, string> = {
  sites: 'The sites under VIRTUAL_ROOT, their databases and their backup status',
  scopes: 'Panel scopes (the nightly database exports switch)',
  providers: 'The backup engines and whether they answer',
  backups: 'Site backups, as jobs',
  'restore-points': 'What can be restored, with the chain each point needs',
  restores: 'Restores into staging or in place, as jobs',
  exports: 'Logical database exports into the sites’ trees',
  server: 'The server-wide locations (mailbox maps, grant exports) as their own backup subject',
  jobs: 'Every job: status, progress, log, cancel',
  webhooks: 'Signed event deliveries to other systems',
  health: 'Liveness, readiness and Prometheus metrics',
  policies: 'Backup policies: schedules per level, retention, the restore-time budget; per-site assignment',
  retention: 'Prune jobs that remove what a policy no longer keeps',
  archive: 'A directory of a site, live or at a restore point, as a tar that keeps xattrs and ACLs',
  webapps: 'Detected web apps, their git snapshots, rollback and Update Assurance',
};

export function buildOpenApiDocument(app: INestApplication): OpenAPIObject {
  const builder = new DocumentBuilder()
    .setTitle(SPEC_TITLE)
    .setDescription(
      'Backups of an ApisCP hosting server under one API: database exports, Duplicity and Bacula backups, restore points ' +
        'with their chains, and restores that keep every extended attribute and ACL. Errors are RFC 9457 ' +
        '`application/problem+json` with a stable `code`. Lists page with `limit` and `cursor` (the previous ' +
        'page’s `nextCursor`) until `nextCursor` is null.',
    )
    .setVersion('1')
    .setLicense('MIT', 'https://opensource.org/licenses/MIT')
    // Relative: Swagger UI at /docs and clients call the host that served the spec (each hosting node runs one).
    .addServer('/', 'This service, where it is served')
    // Tokens are opaque strings compared by their SHA-256 digest, not JWTs: no bearerFormat.
    .addBearerAuth({ type: 'http', scheme: 'bearer', description: 'An API token from API_TOKENS_FILE' }, 'bearer');
  for (const [name, description] of Object.entries(TAGS)) builder.addTag(name, description);
  const document = SwaggerModule.createDocument(app, builder.build(), {
    operationIdFactory: (controller, method) => `${controller.replace(/Controller$/, '')}_${method}`,
    extraModels: [ProblemModel, JobModel, ...Object.values(JOB_MODELS_BY_KIND)],
  });
  return completeDocument(document);
}

/** What Nest's decorators cannot say, written once here for every operation. */
function completeDocument(document: OpenAPIObject): OpenAPIObject {
  const bearer = document.components?.securitySchemes?.bearer as { bearerFormat?: string } | undefined;
  if (bearer) delete bearer.bearerFormat;
  // A job's `request` and `result` depend on its kind: the job schema is the union of the per-kind ones.
  const schemas = document.components!.schemas!;
  schemas[JobModel.name] = {
    description: 'A job; `request` and `result` depend on `kind`.',
    oneOf: Object.values(JOB_MODELS_BY_KIND).map((model) => ({ $ref: getSchemaPath(model) })),
    discriminator: {
      propertyName: 'kind',
      mapping: Object.fromEntries(
        Object.entries(JOB_MODELS_BY_KIND).map(([kind, model]) => [kind, getSchemaPath(model)]),
      ),
    },
  };
  for (const operations of Object.values(document.paths)) {
    for (const [method, operation] of Object.entries(operations) as Array<[string, OperationLike]>) {
      if (!HTTP_METHODS.has(method)) continue;
      if (!operation.description && operation.summary) operation.description = operation.summary;
      // Routes without a role (health) need no token; say so rather than inherit nothing.
      operation.security ??= [];
      for (const [status, response] of Object.entries(operation.responses ?? {})) {
        if (Number(status) < 400) continue;
        // ApiProblems' typed schema, when a later decorator of the same status (RequireRole) gave a type instead.
        const typed = response.schema;
        delete response.schema;
        // Every error is problem+json, whatever the route answers on success (JSON, text/plain).
        const schema = typed ??
          Object.values(response.content ?? {})[0]?.schema ?? { $ref: getSchemaPath(ProblemModel) };
        response.content = { [PROBLEM_CONTENT_TYPE]: { schema } };
      }
    }
  }
  return document;
}

const HTTP_METHODS = new Set(['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace']);

interface OperationLike {
  summary?: string;
  description?: string;
  security?: unknown[];
  responses?: Record<string, { schema?: unknown; content?: Record<string, { schema?: unknown }> }>;
}

/** Key-sorted JSON so the committed spec diffs cleanly. */
export function sortedJson(value: unknown): string {
  return JSON.stringify(sortKeys(value), null, 2) + '\n';
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === 'object') {
    return Object.fromEntries(
      Object.keys(value)
        .sort()
        .map((key) => [key, sortKeys((value as Record<string, unknown>)[key])]),
    );
  }
  return value;
}
