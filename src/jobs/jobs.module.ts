import { Global, Module } from '@nestjs/common';
import { JobEngine } from './job-engine';
import { JobLogStore } from './job-log.store';
import { JobRetention } from './job-retention';
import { JobRepository } from './job.repository';
import { JobsController } from './jobs.controller';

@Global()
@Module({
  controllers: [JobsController],
  providers: [JobRepository, JobLogStore, JobEngine, JobRetention],
  exports: [JobEngine, JobRepository, JobRetention],
})
export class JobsModule {}
