import { Global, Module } from '@nestjs/common';
import { ProvidersModule } from '../providers/providers.module';
import { SitesModule } from '../sites/sites.module';
import { MetricsController } from './metrics.controller';
import { MetricsService } from './metrics.service';

@Global()
@Module({
  imports: [ProvidersModule, SitesModule],
  controllers: [MetricsController],
  providers: [MetricsService],
  exports: [MetricsService],
})
export class MetricsModule {}
