import { Module } from '@nestjs/common';
import { ArchiveModule } from '../archive/archive.module';
import { ProvidersModule } from '../providers/providers.module';
import { RestorePointsModule } from '../restore-points/restore-points.module';
import { SitesModule } from '../sites/sites.module';
import { BrowseController } from './browse.controller';
import { BrowseService } from './browse.service';
import { PointFileStore } from './point-file.store';

@Module({
  imports: [SitesModule, ProvidersModule, RestorePointsModule, ArchiveModule],
  controllers: [BrowseController],
  providers: [PointFileStore, BrowseService],
})
export class BrowseModule {}
