import { Module } from '@nestjs/common';
import { RestorePointsModule } from '../restore-points/restore-points.module';
import { SitesModule } from '../sites/sites.module';
import { SiteStatusController } from './site-status.controller';
import { SiteStatusService } from './site-status.service';

@Module({
  imports: [SitesModule, RestorePointsModule],
  controllers: [SiteStatusController],
  providers: [SiteStatusService],
})
export class SiteStatusModule {}
