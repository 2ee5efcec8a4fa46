import { Injectable, OnModuleInit } from '@nestjs/common';
import { Counter } from 'prom-client';
import { MetricsService } from '../metrics/metrics.service';
import { AssuranceStore } from './assurance-store';

/** `apiscp_backup_webapp_assurances_total{outcome}`: ended Update Assurances, from the catalog (survives restarts). */
@Injectable()
export class WebappMetrics implements OnModuleInit {
  constructor(
    private readonly metrics: MetricsService,
    private readonly assurances: AssuranceStore,
  ) {}

  onModuleInit(): void {
    const outcomes = () => this.assurances.outcomes();
    new Counter({
      name: 'apiscp_backup_webapp_assurances_total',
      help: 'Update Assurances that ended, by outcome: confirmed, rolled-back (the update broke the app), failed.',
      labelNames: ['outcome'],
      registers: [this.metrics.registry],
      collect() {
        this.reset();
        for (const outcome of ['confirmed', 'rolled-back', 'failed']) this.inc({ outcome }, 0);
        for (const row of outcomes()) this.inc({ outcome: row.status }, row.count);
      },
    });
  }
}
