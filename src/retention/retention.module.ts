import { Module } from '@nestjs/common';
import { BackupSubjectsModule } from '../backup-subjects/backup-subjects.module';
import { PoliciesModule } from '../policies/policies.module';
import { ProvidersModule } from '../providers/providers.module';
import { RestorePointsModule } from '../restore-points/restore-points.module';
import { SitesModule } from '../sites/sites.module';
import { PruneController } from './prune.controller';
import { PruneMetrics } from './prune-metrics';
import { PruneService } from './prune.service';

/** Prune jobs: what a policy no longer keeps is removed from the engines (`POST /v1/sites/{site}/prune`). */
@Module({
  imports: [BackupSubjectsModule, PoliciesModule, ProvidersModule, RestorePointsModule, SitesModule],
  controllers: [PruneController],
  providers: [PruneService, PruneMetrics],
  exports: [PruneService],
})
export class RetentionModule {}
