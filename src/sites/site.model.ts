import { ApiProperty } from '@nestjs/swagger';
import { IsOptional } from 'class-validator';
import { PageModel, PageQuery } from '../common/pagination/page';
import { isDomainName } from './site-ref';
import { ValidateBy } from 'class-validator';

export class SitePathsModel {
  /** The site's directory, `VIRTUAL_ROOT/siteN`. */
  @ApiProperty({ example: '/home/virtual/site12' })
  root!: string;
  /** What its backup holds. */
  @ApiProperty({ example: ['/home/virtual/site12/shadow', '/home/virtual/site12/info'] })
  include!: string[];
  /** What its backup leaves out (raw database directories live under shadow/var/lib). */
  @ApiProperty({ example: ['/home/virtual/site12/shadow/var/lib'] })
  exclude!: string[];
}

export class SiteModel {
  @ApiProperty({ example: 'site12' })
  id!: string;
  /** The primary domain, or null when none is known. */
  @ApiProperty({ type: String, nullable: true, example: 'example.com' })
  domain!: string | null;
  @ApiProperty({ example: ['example.com', 'www.example.com'] })
  domains!: string[];
  paths!: SitePathsModel;
}

export class SiteDatabaseModel {
  @ApiProperty({ enum: ['mysql', 'pgsql'] })
  engine!: string;
  @ApiProperty({ example: 'shop1_wp' })
  name!: string;
}

export class DatabaseServerProblemModel {
  @ApiProperty({ enum: ['mysql', 'pgsql'] })
  engine!: string;
  message!: string;
}

/** One site, with its databases: those whose names start with its ApisCP database prefix. */
export class SiteDetailModel extends SiteModel {
  @ApiProperty({ type: [SiteDatabaseModel] })
  databases!: SiteDatabaseModel[];
  /** Database servers that could not be asked, so the list may be short. */
  @ApiProperty({ type: [DatabaseServerProblemModel] })
  databaseServersUnavailable!: DatabaseServerProblemModel[];
}

export class SitePageModel extends PageModel(SiteModel) {}

export class ListSitesQuery extends PageQuery {
  /** Only the site that this domain names. */
  @IsOptional()
  @ValidateBy(
    {
      name: 'isDomainName',
      validator: { validate: (value: unknown) => typeof value === 'string' && isDomainName(value.toLowerCase()) },
    },
    { message: 'domain must be a valid domain name' },
  )
  domain?: string;
}
