import { Module } from '@nestjs/common';
import { BackupsModule } from '../backups/backups.module';
import { PoliciesModule } from '../policies/policies.module';
import { ProvidersModule } from '../providers/providers.module';
import { RestorePointsModule } from '../restore-points/restore-points.module';
import { RetentionModule } from '../retention/retention.module';
import { ScopesModule } from '../scopes/scopes.module';
import { SitesModule } from '../sites/sites.module';
import { SchedulerService } from './scheduler.service';

/** Scheduled backups (and the prunes after them) from each site's policy. */
@Module({
  imports: [
    BackupsModule,
    PoliciesModule,
    ProvidersModule,
    RestorePointsModule,
    RetentionModule,
    ScopesModule,
    SitesModule,
  ],
  providers: [SchedulerService],
  exports: [SchedulerService],
})
export class SchedulerModule {}
