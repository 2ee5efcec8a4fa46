import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiServiceUnavailableResponse, ApiTags } from '@nestjs/swagger';
import { HealthCheck, HealthCheckService, HealthIndicatorService } from '@nestjs/terminus';
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { Public } from '../auth/auth.decorators';
import { CatalogService } from '../catalog/catalog.service';
import { AppConfig } from '../config/app-config';

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
  @ApiOkResponse({ description: 'Alive', schema: { example: { status: 'ok' } } })
  liveness(): { status: 'ok' } {
    return { status: 'ok' };
  }

  /** Readiness: the catalog takes writes and VIRTUAL_ROOT is readable. */
  @Get('readyz')
  @Public()
  @HealthCheck({ swaggerDocumentation: true })
  @ApiServiceUnavailableResponse({ description: 'A dependency is not ready' })
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
