import { applyDecorators } from '@nestjs/common';
import { ApiAcceptedResponse, getSchemaPath } from '@nestjs/swagger';
import { ERROR_STATUS, ERROR_TITLE, ErrorCode } from '../common/errors/error-code';
import { ProblemModel } from '../common/errors/problem.model';

/**
 * How a route declares its answers in the spec (the test harness validates every response against it, so an answer
 * the spec does not list fails the tests):
 *
 * - success: Nest's `@ApiOkResponse({ type })`, or `@ApiJobAccepted()` for a POST that queues a job;
 * - errors: `@ApiStandardProblems(...codes)` with the route's own error codes (`ErrorCode.SiteNotFound`, ...). It adds
 *   the answers every route can give (a body that is not JSON, too large, of another type; an internal error); the
 *   statuses come from `ERROR_STATUS`, so a code is all a route names. `@RequireRole` adds 401 and 403.
 *
 * Errors are written as `application/problem+json` by `buildOpenApiDocument`, whatever the route produces otherwise.
 */

/** What any route may answer before its handler runs: the body parser's and the depth check's refusals. */
export const ANY_ROUTE_PROBLEMS: readonly ErrorCode[] = [
  ErrorCode.MalformedBody,
  ErrorCode.ValidationFailed,
  ErrorCode.PayloadTooLarge,
  ErrorCode.UnsupportedMediaType,
  ErrorCode.Internal,
];

/** Answers of the HTTP server itself, before any route: no `instance`, the connection is closed. */
export const CONNECTION_PROBLEMS: readonly ErrorCode[] = [
  ErrorCode.MalformedRequest,
  ErrorCode.HeadersTooLarge,
  ErrorCode.RequestTimeout,
];

/** Answers for paths or methods no route serves. */
export const ROUTING_PROBLEMS: readonly ErrorCode[] = [ErrorCode.RouteNotFound, ErrorCode.MethodNotAllowed];

/** The site path parameter's codes: a malformed reference, or no such site. */
export const SITE_PROBLEMS: readonly ErrorCode[] = [ErrorCode.InvalidSiteReference, ErrorCode.SiteNotFound];

const PROBLEM_CODES = Symbol('apiscp:problem-codes');
/** `DECORATORS.API_RESPONSE` of @nestjs/swagger (not exported from its entry point). */
const SWAGGER_RESPONSES = 'swagger/apiResponse';

/** A problem+json schema whose `code` is one of `codes`. */
export function problemSchema(codes: readonly ErrorCode[]) {
  return {
    allOf: [
      { $ref: getSchemaPath(ProblemModel) },
      { type: 'object' as const, properties: { code: { type: 'string' as const, enum: [...codes].sort() } } },
    ],
  };
}

/**
 * Declares the route's problem answers, one per status, each typed with the codes it may carry. Several uses on one
 * handler add up.
 */
export function ApiProblems(...codes: readonly ErrorCode[]): MethodDecorator {
  return (_target, _key, descriptor) => {
    const handler = descriptor.value as object;
    const known = (Reflect.getMetadata(PROBLEM_CODES, handler) as ErrorCode[] | undefined) ?? [];
    const all = [...new Set([...known, ...codes])];
    Reflect.defineMetadata(PROBLEM_CODES, all, handler);
    // Written straight into @nestjs/swagger's metadata: its decorators would concatenate the descriptions.
    const responses = { ...(Reflect.getMetadata(SWAGGER_RESPONSES, handler) as Record<string, object> | undefined) };
    for (const status of new Set(codes.map((code) => ERROR_STATUS[code]))) {
      const ofStatus = all.filter((code) => ERROR_STATUS[code] === status).sort();
      responses[status] = {
        ...responses[status],
        // `type` would win over `schema` when another decorator (RequireRole) declared this status with a type.
        type: undefined,
        description: ofStatus.map((code) => `\`${code}\`: ${ERROR_TITLE[code]}`).join('; '),
        schema: problemSchema(ofStatus),
      };
    }
    Reflect.defineMetadata(SWAGGER_RESPONSES, responses, handler);
    return descriptor;
  };
}

/** The route's own error codes, plus those every route may answer (`ANY_ROUTE_PROBLEMS`). */
export function ApiStandardProblems(...codes: readonly ErrorCode[]): MethodDecorator {
  return ApiProblems(...ANY_ROUTE_PROBLEMS, ...codes);
}

/** `Location` of the job, and `Idempotent-Replayed` when a retry with the same `Idempotency-Key` got the first job. */
export const JOB_ACCEPTED_HEADERS = {
  Location: {
    description: 'The job: `/v1/jobs/{id}`',
    required: true,
    schema: { type: 'string', pattern: '^/v1/jobs/[0-9a-f-]{36}$' },
  },
  'Idempotent-Replayed': {
    description: 'Present (`true`) when this answers a retry with the same Idempotency-Key: no new job was started',
    required: false,
    schema: { type: 'string', enum: ['true'] },
  },
} as const;

/** A POST that queues a job: `202`, the job, its `Location`. */
export function ApiJobAccepted(description = 'Queued; follow it at the Location header'): MethodDecorator {
  return applyDecorators(
    ApiAcceptedResponse({
      description,
      schema: { $ref: '#/components/schemas/JobModel' },
      headers: structuredClone(JOB_ACCEPTED_HEADERS) as never,
    }),
  );
}
