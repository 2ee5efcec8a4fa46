import { Module } from '@nestjs/common';
import { ScopesModule } from '../scopes/scopes.module';
import { SitesModule } from '../sites/sites.module';
import { ExportJobsService } from './export-jobs.service';
import { ExportMetrics } from './export-metrics';
import { ExportScheduleService } from './export-schedule.service';
import { ExportsController } from './exports.controller';
import { ExportsModule } from './exports.module';

/** Exports as jobs and over HTTP: `POST /v1/exports`, the file list, the nightly schedule. */
@Module({
  imports: [ExportsModule, SitesModule, ScopesModule],
  controllers: [ExportsController],
  providers: [ExportJobsService, ExportScheduleService, ExportMetrics],
  exports: [ExportJobsService],
})
export class ExportJobsModule {}
