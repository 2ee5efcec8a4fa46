import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { Request, Response } from 'express';
import { AppError, FieldError } from './app-error';
import { ERROR_STATUS, ERROR_TITLE, ErrorCode } from './error-code';
import { RouteTable } from './route-table';

export const PROBLEM_CONTENT_TYPE = 'application/problem+json';

export interface Problem {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  /** The request path; absent when the request could not be read at all. */
  instance?: string;
  errors?: FieldError[];
  errorId?: string;
  [key: string]: unknown;
}

const STATUS_FALLBACK_CODE: Record<number, ErrorCode> = {
  400: ErrorCode.ValidationFailed,
  401: ErrorCode.Unauthenticated,
  403: ErrorCode.Forbidden,
  404: ErrorCode.RouteNotFound,
  405: ErrorCode.MethodNotAllowed,
  413: ErrorCode.PayloadTooLarge,
  415: ErrorCode.UnsupportedMediaType,
};

/** The only place where errors become HTTP responses: every one is RFC 9457 problem+json. */
@Catch()
export class ProblemFilter implements ExceptionFilter {
  private readonly logger = new Logger('ProblemFilter');

  constructor(private readonly routes: RouteTable) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const req = http.getRequest<Request>();
    const res = http.getResponse<Response>();
    const { problem, headers } = this.toProblem(exception, req);
    if (res.headersSent) {
      res.end();
      return;
    }
    for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
    res.status(problem.status).type(PROBLEM_CONTENT_TYPE).send(JSON.stringify(problem));
  }

  toProblem(exception: unknown, req: Request): { problem: Problem; headers: Record<string, string> } {
    const instance = req.originalUrl?.split('?')[0] ?? req.url;
    if (exception instanceof AppError) {
      const { errors, headers, ...rest } = exception.extras;
      return {
        problem: { ...problemOf(exception.code, exception.detail, instance), ...rest, ...(errors ? { errors } : {}) },
        headers: headers ?? {},
      };
    }
    if (exception instanceof HttpException) {
      return this.fromHttpException(exception, req, instance);
    }
    // A JobFailure or ExportError (service-error.ts) belongs in a job record: one reaching a response is a bug.
    const errorId = randomUUID();
    this.logger.error({ err: exception, errorId }, 'unexpected error');
    return {
      problem: {
        ...problemOf(ErrorCode.Internal, `An unexpected error occurred; quote error id ${errorId}.`, instance),
        errorId,
      },
      headers: {},
    };
  }

  private fromHttpException(
    exception: HttpException,
    req: Request,
    instance: string,
  ): { problem: Problem; headers: Record<string, string> } {
    const status = exception.getStatus();
    if (status === 404 && this.isRouterMiss(exception)) {
      const allowed = this.routes.allowedMethods(req.path);
      if (allowed.length > 0 && !allowed.includes(req.method.toUpperCase())) {
        return {
          problem: problemOf(
            ErrorCode.MethodNotAllowed,
            `${req.method} is not allowed on ${req.path}; allowed: ${allowed.join(', ')}.`,
            instance,
          ),
          headers: { Allow: allowed.join(', ') },
        };
      }
      return { problem: problemOf(ErrorCode.RouteNotFound, `No route matches ${req.path}.`, instance), headers: {} };
    }
    const code = STATUS_FALLBACK_CODE[status];
    if (code) {
      return { problem: problemOf(code, this.messageOf(exception), instance), headers: {} };
    }
    if (status === 503) {
      const body = exception.getResponse() as { details?: unknown };
      return {
        problem: { ...problemOf(ErrorCode.NotReady, 'A dependency is not ready.', instance), checks: body.details },
        headers: { 'Retry-After': '5' },
      };
    }
    if (status >= 500) {
      const errorId = randomUUID();
      this.logger.error({ err: exception, errorId }, 'http exception');
      return {
        problem: { ...problemOf(ErrorCode.Internal, `Quote error id ${errorId}.`, instance), errorId },
        headers: {},
      };
    }
    return {
      problem: {
        type: 'about:blank',
        title: exception.message,
        status,
        detail: this.messageOf(exception),
        code: `http-${status}`,
        instance,
      },
      headers: {},
    };
  }

  private isRouterMiss(exception: HttpException): boolean {
    const response = exception.getResponse();
    const message =
      typeof response === 'object' && response !== null ? (response as { message?: unknown }).message : response;
    return typeof message === 'string' && message.startsWith('Cannot ');
  }

  private messageOf(exception: HttpException): string {
    const response = exception.getResponse();
    if (typeof response === 'string') return response;
    const message = (response as { message?: unknown }).message;
    if (Array.isArray(message)) return message.join('; ');
    return typeof message === 'string' ? message : exception.message;
  }
}

/** The fields every problem+json answer carries, from its code. */
export function problemOf(code: ErrorCode, detail: string, instance?: string): Problem {
  return {
    type: `urn:apiscp-backup-api:problem:${code}`,
    title: ERROR_TITLE[code],
    status: ERROR_STATUS[code],
    detail,
    code,
    instance,
  };
}
