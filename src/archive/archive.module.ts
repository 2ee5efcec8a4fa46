import { Module } from '@nestjs/common';
import { ProvidersModule } from '../providers/providers.module';
import { RestorePointsModule } from '../restore-points/restore-points.module';
import { SitesModule } from '../sites/sites.module';
import { ArchiveJobs } from './archive-jobs';
import { ArchiveController, RestorePointArchiveController } from './archive.controller';
import { ArchiveService } from './archive.service';
import { DirectoryTar } from './directory-tar';
import { RestorePointArchiveService } from './restore-point-archive.service';

@Module({
  imports: [SitesModule, ProvidersModule, RestorePointsModule],
  controllers: [ArchiveController, RestorePointArchiveController],
  providers: [ArchiveJobs, ArchiveService, DirectoryTar, RestorePointArchiveService],
  exports: [ArchiveService, ArchiveJobs, DirectoryTar, RestorePointArchiveService],
})
export class ArchiveModule {}
