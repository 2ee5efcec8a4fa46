import { Module } from '@nestjs/common';
import { AppConfig } from '../config/app-config';
import { BACKUP_PROVIDERS, type BackupProvider } from './backup-provider';
import { BaculaProvider } from './bacula/bacula.provider';
import { DuplicityProvider } from './duplicity/duplicity.provider';
import { DuplicityTarget } from './duplicity/duplicity-target';
import { FsAttributesModule } from './fs-attributes/fs-attributes.module';
import { ProviderRegistry } from './provider-registry';
import { ProvidersController } from './providers.controller';
import { ResticProvider } from './restic/restic.provider';
import { BorgProvider } from './borg/borg.provider';

/** Every engine is constructed by Nest; the token holds only those PROVIDERS enables, in its order. */
@Module({
  imports: [FsAttributesModule],
  controllers: [ProvidersController],
  providers: [
    DuplicityProvider,
    DuplicityTarget,
    BaculaProvider,
    ResticProvider,
    BorgProvider,
    {
      provide: BACKUP_PROVIDERS,
      inject: [AppConfig, DuplicityProvider, BaculaProvider, ResticProvider, BorgProvider],
      useFactory: (config: AppConfig, ...engines: BackupProvider[]): BackupProvider[] =>
        config.providers
          .map((name) => engines.find((engine) => engine.name === name))
          .filter((engine) => engine !== undefined),
    },
    ProviderRegistry,
  ],
  exports: [ProviderRegistry],
})
export class ProvidersModule {}
