import { Module } from '@nestjs/common';
import { SitesModule } from '../sites/sites.module';
import { BackupSubjects } from './backup-subjects';

/** What a job backs up or restores (a site or the server), for backups, restores and prunes alike. */
@Module({
  imports: [SitesModule],
  providers: [BackupSubjects],
  exports: [BackupSubjects],
})
export class BackupSubjectsModule {}
