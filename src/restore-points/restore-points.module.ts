import { Module } from '@nestjs/common';
import { ProvidersModule } from '../providers/providers.module';
import { SitesModule } from '../sites/sites.module';
import { RestorePointStore } from './restore-point.store';
import { RestorePointsController } from './restore-points.controller';
import { RestorePointsService } from './restore-points.service';

@Module({
  imports: [SitesModule, ProvidersModule],
  controllers: [RestorePointsController],
  providers: [RestorePointStore, RestorePointsService],
  exports: [RestorePointsService],
})
export class RestorePointsModule {}
