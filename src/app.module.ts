import { DynamicModule, Module } from '@nestjs/common';
import type { DestinationStream } from 'pino';
import { ArchiveModule } from './archive/archive.module';
import { AuthModule } from './auth/auth.module';
import { BrowseModule } from './browse/browse.module';
import { BackupsModule } from './backups/backups.module';
import { CatalogModule } from './catalog/catalog.module';
import { CommonModule } from './common/common.module';
import { AppConfig } from './config/app-config';
import { ConfigModule } from './config/config.module';
import { ExportJobsModule } from './exports/export-jobs.module';
import { HealthModule } from './health/health.module';
import { IdempotencyModule } from './idempotency/idempotency.module';
import { JobsModule } from './jobs/jobs.module';
import { LoggingModule } from './logging/logging.module';
import { MetricsModule } from './metrics/metrics.module';
import { ProvidersModule } from './providers/providers.module';
import { RestorePointsModule } from './restore-points/restore-points.module';
import { RestoresModule } from './restores/restores.module';
import { ScopesModule } from './scopes/scopes.module';
import { ServerModule } from './server/server.module';
import { SiteStatusModule } from './site-status/site-status.module';
import { SitesModule } from './sites/sites.module';
import { WebhooksModule } from './webhooks/webhooks.module';
import { PoliciesModule } from './policies/policies.module';
import { RetentionModule } from './retention/retention.module';
import { SchedulerModule } from './scheduler/scheduler.module';
import { WebappsModule } from './webapps/webapps.module';

@Module({})
export class AppModule {
  static forRoot(config: AppConfig, logDestination?: DestinationStream): DynamicModule {
    return {
      module: AppModule,
      imports: [
        ConfigModule.forRoot(config),
        LoggingModule.forRoot(config, logDestination),
        CommonModule,
        CatalogModule,
        AuthModule,
        HealthModule,
        SitesModule,
        ScopesModule,
        ProvidersModule,
        JobsModule,
        IdempotencyModule,
        RestorePointsModule,
        BackupsModule,
        RestoresModule,
        ServerModule,
        ExportJobsModule,
        MetricsModule,
        SiteStatusModule,
        WebhooksModule,
        PoliciesModule,
        RetentionModule,
        SchedulerModule,
        WebappsModule,
        ArchiveModule,
        BrowseModule,
      ],
    };
  }
}
