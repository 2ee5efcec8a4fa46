import { Logger, Module } from '@nestjs/common';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { CatalogService } from '../catalog/catalog.service';
import { Clock } from '../common/clock';
import { ProcessRunner } from '../common/process/process-runner';
import { AppConfig } from '../config/app-config';
import { CatalogScopeStore } from './catalog-scope.store';
import { CpcmdScopeStore } from './cpcmd-scope.store';
import { SCOPE_STORE, type ScopeStore } from './scope-store';
import { ScopesController } from './scopes.controller';
import { ScopesService } from './scopes.service';

/** `APNSCP_ROOT/bin/cpcmd`, else `cpcmd` on PATH; undefined when this is not an ApisCP server. */
export function findCpcmd(config: AppConfig, path = process.env.PATH ?? ''): string | undefined {
  const candidates = [
    join(config.apnscpRoot, 'bin', 'cpcmd'),
    ...path
      .split(delimiter)
      .filter(Boolean)
      .map((dir) => join(dir, 'cpcmd')),
  ];
  return candidates.find((candidate) => {
    try {
      accessSync(candidate, constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

@Module({
  controllers: [ScopesController],
  providers: [
    ScopesService,
    {
      provide: SCOPE_STORE,
      inject: [AppConfig, ProcessRunner, CatalogService, Clock],
      useFactory: (config: AppConfig, runner: ProcessRunner, catalog: CatalogService, clock: Clock): ScopeStore => {
        const cpcmd = findCpcmd(config);
        new Logger('ScopesModule').log(
          cpcmd ? `scopes go through ${cpcmd}` : 'scopes are kept in the catalog (no cpcmd found)',
        );
        return cpcmd ? new CpcmdScopeStore(runner, cpcmd) : new CatalogScopeStore(catalog, clock);
      },
    },
  ],
  exports: [ScopesService],
})
export class ScopesModule {}
