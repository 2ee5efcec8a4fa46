import { Logger, type FactoryProvider } from '@nestjs/common';
import { existsSync } from 'node:fs';
import { AppConfig } from '../config/app-config';
import { ApiscpExporter, backupDbsScript } from './apiscp-exporter';
import { DATABASE_EXPORTER, type DatabaseExporter } from './database-exporter';
import { NativeExporter } from './native-exporter';
import type { ExporterKind } from './export.model';

/** `apiscp` when `APNSCP_ROOT/bin/scripts/backup_dbs.php` exists (ApisCP exports its own databases), else `native`. */
export function selectExporterKind(config: AppConfig): ExporterKind {
  return existsSync(backupDbsScript(config)) ? 'apiscp' : 'native';
}

export const databaseExporterProvider: FactoryProvider<DatabaseExporter> = {
  provide: DATABASE_EXPORTER,
  inject: [AppConfig, NativeExporter, ApiscpExporter],
  useFactory: (config: AppConfig, native: NativeExporter, apiscp: ApiscpExporter): DatabaseExporter => {
    const kind = selectExporterKind(config);
    new Logger('DatabaseExporter').log(
      kind === 'apiscp'
        ? `database exports run ${backupDbsScript(config)} --force`
        : 'database exports run mariadb-dump and pg_dump (no ApisCP backup_dbs.php found)',
    );
    return kind === 'apiscp' ? apiscp : native;
  },
};
