import { Controller, Get } from '@nestjs/common';
import { ApiOkResponse, ApiTags } from '@nestjs/swagger';
import { RequireRole } from '../auth/auth.decorators';
import { ApiStandardProblems } from '../openapi/api-answers';
import { AppConfig } from '../config/app-config';
import { ProviderModel } from './provider.model';
import { ProviderRegistry } from './provider-registry';

@ApiTags('providers')
@Controller('v1/providers')
export class ProvidersController {
  constructor(
    private readonly registry: ProviderRegistry,
    private readonly config: AppConfig,
  ) {}

  /** List the enabled backup providers, their levels and whether they are usable. */
  @Get()
  @RequireRole('monitor')
  @ApiOkResponse({ type: [ProviderModel] })
  @ApiStandardProblems()
  async list(): Promise<ProviderModel[]> {
    return Promise.all(
      this.registry.all().map(async (provider) => ({
        name: provider.name,
        levels: [...provider.levels],
        default: provider.name === this.config.defaultProvider,
        ...(await this.registry.status(provider)),
      })),
    );
  }
}
