import { Module } from '@nestjs/common';
import { SiteDirectory } from './site-directory';
import { SitesController } from './sites.controller';
import { SitesService } from './sites.service';

@Module({
  controllers: [SitesController],
  providers: [SiteDirectory, SitesService],
  exports: [SiteDirectory, SitesService],
})
export class SitesModule {}
