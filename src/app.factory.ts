import { NestFactory } from '@nestjs/core';
import type { NestExpressApplication } from '@nestjs/platform-express';
import type { NextFunction, Request, Response } from 'express';
import { SwaggerModule } from '@nestjs/swagger';
import { Logger } from 'nestjs-pino';
import type { DestinationStream } from 'pino';
import { AppModule } from './app.module';
import { AppError } from './common/errors/app-error';
import { answerClientErrorsAsProblems } from './common/errors/client-error.handler';
import { ProblemValidationPipe } from './common/validation/problem-validation.pipe';
import { ErrorCode } from './common/errors/error-code';
import { ProblemFilter } from './common/errors/problem.filter';
import { RouteTable } from './common/errors/route-table';
import type { AppConfig } from './config/app-config';
import { buildOpenApiDocument } from './openapi/openapi';

export interface CreateAppOptions {
  /** Where logs go instead of stdout (tests read them). */
  logDestination?: DestinationStream;
}

/** Builds the whole HTTP application, the same way for the service, the tests and the spec generator. */
export async function createApp(config: AppConfig, options: CreateAppOptions = {}): Promise<NestExpressApplication> {
  const app = await NestFactory.create<NestExpressApplication>(AppModule.forRoot(config, options.logDestination), {
    bufferLogs: true,
    bodyParser: false,
  });
  app.useLogger(app.get(Logger));
  app.flushLogs();
  // A body this API cannot read is refused rather than ignored: a form post must not start a job with defaults.
  app.use((req: Request, _res: Response, next: NextFunction) => {
    const hasBody = Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
    if (hasBody && !req.is('application/json') && !req.is('application/*+json')) {
      next(new AppError(ErrorCode.UnsupportedMediaType, 'Send the request body as application/json.'));
      return;
    }
    next();
  });
  app.useBodyParser('json', {
    limit: config.bodyLimit,
    strict: true,
    type: ['application/json', 'application/*+json'],
  });
  // Body-parser failures become typed errors here, before Nest flattens them into a bare 400.
  app.use((error: unknown, _req: Request, _res: Response, next: NextFunction) =>
    next(bodyParserError(error, config.bodyLimit)),
  );
  // class-transformer and the idempotency fingerprint walk bodies recursively: a 64 kB body of nested brackets
  // overflows the stack (a 500) unless it is refused here, before anything reads it.
  app.use((req: Request, _res: Response, next: NextFunction) => {
    if (!nestsDeeperThan(req.body, MAX_BODY_DEPTH)) return next();
    next(
      new AppError(ErrorCode.ValidationFailed, `The request body nests deeper than ${MAX_BODY_DEPTH} levels.`, {
        errors: [{ field: 'body', messages: [`must not nest deeper than ${MAX_BODY_DEPTH} levels`] }],
      }),
    );
  });
  app.disable('x-powered-by');
  // Responses are small and never cached by clients; hashing every body for an ETag only costs CPU.
  app.set('etag', false);
  app.set('query parser', 'simple');
  app.useGlobalPipes(new ProblemValidationPipe());
  const routes = app.get(RouteTable);
  app.useGlobalFilters(new ProblemFilter(routes));
  app.enableShutdownHooks();
  answerClientErrorsAsProblems(app.getHttpServer());

  const document = buildOpenApiDocument(app);
  routes.load(document.paths);
  app
    .getHttpAdapter()
    .getInstance()
    .get('/openapi.json', (_req: Request, res: Response) => {
      res.json(document);
    });
  if (config.swaggerUi) {
    SwaggerModule.setup('docs', app, document, {
      jsonDocumentUrl: 'openapi-ui.json',
      swaggerOptions: { persistAuthorization: true, displayRequestDuration: true },
      customSiteTitle: 'apiscp-backup-api',
    });
  }
  return app;
}

const MAX_BODY_DEPTH = 32;

/** Iterative, so that measuring the depth cannot itself overflow the stack. */
function nestsDeeperThan(value: unknown, limit: number): boolean {
  const pending: Array<[unknown, number]> = [[value, 0]];
  while (pending.length > 0) {
    const [current, depth] = pending.pop()!;
    if (current === null || typeof current !== 'object') continue;
    if (depth >= limit) return true;
    for (const child of Object.values(current)) pending.push([child, depth + 1]);
  }
  return false;
}

function bodyParserError(error: unknown, limit: string): unknown {
  const type = (error as { type?: unknown } | undefined)?.type;
  switch (type) {
    case 'entity.too.large':
      return new AppError(ErrorCode.PayloadTooLarge, `The request body exceeds the ${limit} limit.`);
    case 'entity.parse.failed':
      return new AppError(ErrorCode.MalformedBody, 'The request body is not valid JSON.');
    case 'charset.unsupported':
    case 'encoding.unsupported':
      return new AppError(ErrorCode.UnsupportedMediaType, 'The request body’s charset or encoding is not supported.');
    default: {
      if (typeof type === 'string' && type.startsWith('entity.'))
        return new AppError(ErrorCode.MalformedBody, 'The request body could not be read.');
      // A Content-Encoding (gzip, deflate, br) over bytes that do not decompress fails in zlib: a 400 with no type.
      const status = (error as { status?: unknown } | undefined)?.status;
      return typeof status === 'number' && status >= 400 && status < 500
        ? new AppError(ErrorCode.MalformedBody, 'The request body could not be read or decompressed.')
        : error;
    }
  }
}
