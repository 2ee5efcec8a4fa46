import { Module } from '@nestjs/common';
import { BackupSubjectsModule } from '../backup-subjects/backup-subjects.module';
import { BackupsModule } from '../backups/backups.module';
import { RestorePointsModule } from '../restore-points/restore-points.module';
import { RestoresModule } from '../restores/restores.module';
import { ServerController } from './server.controller';

@Module({
  imports: [BackupSubjectsModule, BackupsModule, RestoresModule, RestorePointsModule],
  controllers: [ServerController],
})
export class ServerModule {}
