import { Global, Module } from '@nestjs/common';
import { DiscoveryModule } from '@nestjs/core';
import { JobEngine } from './job-engine';
import { JobLogStore } from './job-log.store';
import { JobRetention } from './job-retention';
import { JobRepository } from './job.repository';
import { JobsController } from './jobs.controller';
import { RetryTimer, TargetGate } from './target-gate';

@Global()
@Module({
  imports: [DiscoveryModule],
  controllers: [JobsController],
  providers: [JobRepository, JobLogStore, JobEngine, JobRetention, RetryTimer, TargetGate],
  exports: [JobEngine, JobRepository, JobRetention, TargetGate, JobLogStore],
})
export class JobsModule {}
