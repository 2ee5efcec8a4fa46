import { Module } from '@nestjs/common';
import { ProvidersModule } from '../providers/providers.module';
import { SitesModule } from '../sites/sites.module';
import { PoliciesController, SitePolicyController } from './policies.controller';
import { PoliciesService } from './policies.service';
import { PolicyStore } from './policy.store';

/** Backup policies (`/v1/policies`) and which one applies to each site (`/v1/sites/{site}/policy`). */
@Module({
  imports: [SitesModule, ProvidersModule],
  controllers: [PoliciesController, SitePolicyController],
  providers: [PolicyStore, PoliciesService],
  exports: [PoliciesService],
})
export class PoliciesModule {}
