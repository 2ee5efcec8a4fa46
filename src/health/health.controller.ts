import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiResponse, ApiTags } from '@nestjs/swagger';
import { HealthCheck, HealthCheckService, HealthIndicatorService } from '@nestjs/terminus';
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { Public } from '../auth/auth.decorators';
import { CatalogService } from '../catalog/catalog.service';
import { ErrorCode } from '../common/errors/error-code';
import { AppConfig } from '../config/app-config';
import { ApiStandardProblems } from '../openapi/api-answers';

/** Each dependency's state, as @nestjs/terminus reports it. */
const CHECKS_SCHEMA = {
  type: 'object' as const,
  additionalProperties: {
    type: 'object' as const,
    properties: { status: { type: 'string' as const, enum: ['up', 'down'] } },
    required: ['status'],
    additionalProperties: true,
  },
};

@ApiTags('health')
@Controller()
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly indicator: HealthIndicatorService,
    private readonly catalog: CatalogService,
    private readonly config: AppConfig,
  ) {}

  /** Liveness: the process answers. */
  @Get('healthz')
  @Public()
  @ApiOkResponse({
    description: 'Alive',
    schema: {
      type: 'object',
      properties: { status: { type: 'string', enum: ['ok'] } },
      required: ['status'],
      example: { status: 'ok' },
    },
  })
  @ApiStandardProblems()
  liveness(): { status: 'ok' } {
    return { status: 'ok' };
  }

  /** Readiness: the catalog takes writes and VIRTUAL_ROOT is readable. */
  @Get('readyz')
  @Public()
  @HealthCheck({ swaggerDocumentation: false })
  @ApiOkResponse({
    description: 'Ready',
    schema: {
      type: 'object',
      properties: {
        status: { type: 'string', enum: ['ok'] },
        info: { ...CHECKS_SCHEMA, nullable: true },
        error: { ...CHECKS_SCHEMA, nullable: true },
        details: CHECKS_SCHEMA,
      },
      required: ['status', 'details'],
    },
  })
  @ApiStandardProblems(ErrorCode.NotReady)
  @ApiResponse({
    status: 503,
    headers: { 'Retry-After': { description: 'Seconds to wait before asking again', schema: { type: 'integer' } } },
  })
  readiness() {
    return this.health.check([
      () => {
        const check = this.indicator.check('catalog');
        return this.catalog.isWritable() ? check.up() : check.down({ message: 'the catalog does not accept writes' });
      },
      async () => {
        const check = this.indicator.check('virtualRoot');
        try {
          await access(this.config.virtualRoot, constants.R_OK | constants.X_OK);
          return check.up({ path: this.config.virtualRoot });
        } catch (error) {
          return check.down({
            path: this.config.virtualRoot,
            message: (error as NodeJS.ErrnoException).code ?? 'unreadable',
          });
        }
      },
    ]);
  }
}
