import { Module } from '@nestjs/common';
import { BackupSubjectsModule } from '../backup-subjects/backup-subjects.module';
import { ProvidersModule } from '../providers/providers.module';
import { RestorePointsModule } from '../restore-points/restore-points.module';
import { SitesModule } from '../sites/sites.module';
import { RestoresController } from './restores.controller';
import { RestoresService } from './restores.service';

@Module({
  imports: [BackupSubjectsModule, SitesModule, ProvidersModule, RestorePointsModule],
  controllers: [RestoresController],
  providers: [RestoresService],
  exports: [RestoresService],
})
export class RestoresModule {}
