import { Module } from '@nestjs/common';
import { ApiscpExporter } from './apiscp-exporter';
import { DatabaseConnections } from './database-connection';
import { DatabaseServers } from './database-servers';
import { databaseExporterProvider } from './exporter.factory';
import { ExportStore } from './export-store';
import { ExportsService } from './exports.service';
import { NativeExporter } from './native-exporter';

/** Database exports; the HTTP controller and the job wiring live with their callers. */
@Module({
  providers: [
    DatabaseConnections,
    DatabaseServers,
    ExportStore,
    NativeExporter,
    ApiscpExporter,
    databaseExporterProvider,
    ExportsService,
  ],
  exports: [ExportsService, DatabaseServers],
})
export class ExportsModule {}
