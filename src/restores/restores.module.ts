import { Module } from '@nestjs/common';
import { ProvidersModule } from '../providers/providers.module';
import { RestorePointsModule } from '../restore-points/restore-points.module';
import { SitesModule } from '../sites/sites.module';
import { RestoresController } from './restores.controller';
import { RestoresService } from './restores.service';

@Module({
  imports: [SitesModule, ProvidersModule, RestorePointsModule],
  controllers: [RestoresController],
  providers: [RestoresService],
})
export class RestoresModule {}
