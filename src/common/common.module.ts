import { Global, Module } from '@nestjs/common';
import { Clock } from './clock';
import { RouteTable } from './errors/route-table';
import { ProcessRunner } from './process/process-runner';

@Global()
@Module({ providers: [ProcessRunner, Clock, RouteTable], exports: [ProcessRunner, Clock, RouteTable] })
export class CommonModule {}
