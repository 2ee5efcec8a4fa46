import { DynamicModule, Module } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { LoggerModule } from 'nestjs-pino';
import pino, { type DestinationStream } from 'pino';
import { AppConfig } from '../config/app-config';
import type { Principal } from '../auth/role';

/** Paths pino replaces with [Redacted]: credentials in requests and any field that names a secret. */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'res.headers["set-cookie"]',
  '*.passphrase',
  '*.password',
  '*.secret',
  '*.token',
  'passphrase',
  'password',
  'secret',
  'token',
];

const REQUEST_ID = /^[\w.:-]{1,128}$/;

function principalOf(req: IncomingMessage): { tokenName?: string; role?: string } {
  const principal = (req as IncomingMessage & { principal?: Principal }).principal;
  return principal ? { tokenName: principal.name, role: principal.role } : {};
}

@Module({})
export class LoggingModule {
  static forRoot(config: AppConfig, destination?: DestinationStream): DynamicModule {
    return {
      module: LoggingModule,
      imports: [
        LoggerModule.forRoot({
          pinoHttp: [
            {
              level: config.log.level,
              redact: { paths: REDACT_PATHS, censor: '[REDACTED]' },
              genReqId: (req, res) => {
                const given = req.headers['x-request-id'];
                const id = typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
                res.setHeader('X-Request-Id', id);
                return id;
              },
              // Added to the access line only: pino-http's customProps makes two child loggers per request.
              customSuccessObject: (req, _res, line: object) => ({ ...line, ...principalOf(req) }),
              customErrorObject: (req, _res, _error, line: object) => ({ ...line, ...principalOf(req) }),
              // Successful reads are debug: a few pollers would otherwise bury the writes and errors an operator reads.
              customLogLevel: (req, res, error) =>
                error || res.statusCode >= 500
                  ? 'error'
                  : res.statusCode >= 400
                    ? 'warn'
                    : req.method === 'GET' || req.method === 'HEAD'
                      ? 'debug'
                      : 'info',
              serializers: {
                req: (req: { id: string; method: string; url: string }) => ({
                  id: req.id,
                  method: req.method,
                  url: req.url,
                }),
              },
              autoLogging: { ignore: (req) => req.url === '/healthz' || req.url === '/readyz' },
              transport:
                config.log.format === 'pretty' && !destination
                  ? { target: 'pino-pretty', options: { singleLine: true, translateTime: 'SYS:HH:MM:ss.l' } }
                  : undefined,
            },
            // Asynchronous writes: a slow stdout reader must never stall request handling.
            (destination ??
              (config.log.format === 'json'
                ? pino.destination({ dest: 1, sync: false })
                : undefined)) as DestinationStream,
          ],
        }),
      ],
    };
  }
}
