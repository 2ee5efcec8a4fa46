import { Module } from '@nestjs/common';
import { SchedulerModule } from '../scheduler/scheduler.module';
import { RestorePointsModule } from '../restore-points/restore-points.module';
import { SitesModule } from '../sites/sites.module';
import { SiteStatusController } from './site-status.controller';
import { SiteStatusService } from './site-status.service';

@Module({
  imports: [SitesModule, RestorePointsModule, SchedulerModule],
  controllers: [SiteStatusController],
  providers: [SiteStatusService],
})
export class SiteStatusModule {}
