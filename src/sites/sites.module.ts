import { Module } from '@nestjs/common';
import { ExportsModule } from '../exports/exports.module';
import { SiteDirectory } from './site-directory';
import { SitesController } from './sites.controller';
import { SitesService } from './sites.service';

@Module({
  imports: [ExportsModule],
  controllers: [SitesController],
  providers: [SiteDirectory, SitesService],
  exports: [SiteDirectory, SitesService],
})
export class SitesModule {}
