import { Module } from '@nestjs/common';
import { BackupSubjectsModule } from '../backup-subjects/backup-subjects.module';
import { ExportJobsModule } from '../exports/export-jobs.module';
import { ScopesModule } from '../scopes/scopes.module';
import { ProvidersModule } from '../providers/providers.module';
import { RestorePointsModule } from '../restore-points/restore-points.module';
import { SitesModule } from '../sites/sites.module';
import { BackupsController } from './backups.controller';
import { BackupsService } from './backups.service';

@Module({
  imports: [BackupSubjectsModule, SitesModule, ProvidersModule, RestorePointsModule, ScopesModule, ExportJobsModule],
  controllers: [BackupsController],
  providers: [BackupsService],
  exports: [BackupsService],
})
export class BackupsModule {}
