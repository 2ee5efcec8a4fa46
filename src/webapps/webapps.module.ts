import { Module } from '@nestjs/common';
import { DatabaseConnections } from '../exports/database-connection';
import { SitesModule } from '../sites/sites.module';
import { AssuranceStore } from './assurance-store';
import { WebappHttpChecker } from './http-checker';
import { SiteGit } from './site-git';
import { SnapshotStore } from './snapshot-store';
import { WebappDatabases } from './webapp-databases';
import { WebappDetector } from './webapp-detector';
import { WebappMetrics } from './webapp-metrics';
import { WebappSnapshots } from './webapp-snapshots';
import { WebappsController } from './webapps.controller';
import { WebappsService } from './webapps.service';

/** Web apps found in sites' docroots, their git snapshots with database exports, rollbacks and Update Assurance. */
@Module({
  imports: [SitesModule],
  controllers: [WebappsController],
  providers: [
    DatabaseConnections,
    SiteGit,
    SnapshotStore,
    WebappDatabases,
    WebappDetector,
    WebappSnapshots,
    AssuranceStore,
    WebappHttpChecker,
    WebappMetrics,
    WebappsService,
  ],
})
export class WebappsModule {}
