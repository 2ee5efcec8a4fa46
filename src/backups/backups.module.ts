import { Module } from '@nestjs/common';
import { ExportJobsModule } from '../exports/export-jobs.module';
import { ScopesModule } from '../scopes/scopes.module';
import { ProvidersModule } from '../providers/providers.module';
import { RestorePointsModule } from '../restore-points/restore-points.module';
import { SitesModule } from '../sites/sites.module';
import { BackupsController } from './backups.controller';
import { BackupsService } from './backups.service';
import { BackupSubjects } from './backup-subjects';

@Module({
  imports: [SitesModule, ProvidersModule, RestorePointsModule, ScopesModule, ExportJobsModule],
  controllers: [BackupsController],
  providers: [BackupsService, BackupSubjects],
  exports: [BackupsService, BackupSubjects],
})
export class BackupsModule {}
