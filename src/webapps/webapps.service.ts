import { Injectable, Logger } from '@nestjs/common';
import type { Principal } from '../auth/role';
import { AppError } from '../common/errors/app-error';
import { ErrorCode } from '../common/errors/error-code';
import { AppConfig } from '../config/app-config';
import type { Job } from '../jobs/job';
import { JobEngine, type JobRun } from '../jobs/job-engine';
import { JobHandler } from '../jobs/job-handler';
import { JobFailure } from '../jobs/job-failure';
import { SiteDirectory } from '../sites/site-directory';
import type { Site } from '../sites/site';
import type { SiteRef } from '../sites/site-ref';
import { AssuranceStore, type Assurance } from './assurance-store';
import { judge, WebappHttpChecker } from './http-checker';
import { SnapshotStore, type StoredSnapshot } from './snapshot-store';
import { WebappDetector, type DetectedWebapp } from './webapp-detector';
import { WebappSnapshots, type DiffSummary } from './webapp-snapshots';
import type {
  SetSnapshotsBody,
  SnapshotModel,
  StartAssuranceBody,
  TakeSnapshotBody,
  WebappModel,
} from './webapp.model';

const DEFAULT_SHRINK_PERCENT = 50;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const COMMIT = /^[0-9a-f]{40}$/;

type Operation = 'snapshot' | 'rollback' | 'assurance' | 'confirm';

interface WebappJobParams {
  app: string;
  operation: Operation;
  message?: string;
  snapshot?: string;
  assurance?: string;
}

/** Detected web apps, their snapshots and rollbacks, and Update Assurance; every change runs as a `webapp` job. */
@JobHandler('webapp')
@Injectable()
export class WebappsService implements JobHandler {
  private readonly logger = new Logger(WebappsService.name);

  constructor(
    private readonly engine: JobEngine,
    private readonly sites: SiteDirectory,
    private readonly detector: WebappDetector,
    private readonly snapshots: WebappSnapshots,
    private readonly store: SnapshotStore,
    private readonly assurances: AssuranceStore,
    private readonly checker: WebappHttpChecker,
    private readonly config: AppConfig,
  ) {}

  async list(ref: SiteRef): Promise<WebappModel[]> {
    const site = await this.sites.resolve(ref);
    const apps = await this.detector.detect(site);
    return Promise.all(apps.map((app) => this.toModel(site, app)));
  }

  async get(ref: SiteRef, appId: string): Promise<WebappModel> {
    const { site, app } = await this.resolve(ref, appId);
    return this.toModel(site, app);
  }

  async setSnapshots(ref: SiteRef, appId: string, body: SetSnapshotsBody): Promise<WebappModel> {
    const { site, app } = await this.resolve(ref, appId);
    try {
      if (body.enabled) await this.snapshots.enable(site, app, body.includeUploads ?? false);
      else await this.snapshots.disable(site, app);
    } catch (error) {
      if (error instanceof JobFailure) throw new AppError(ErrorCode.WebappUnsupported, error.message);
      throw error;
    }
    return this.toModel(site, app);
  }

  async startSnapshot(ref: SiteRef, appId: string, body: TakeSnapshotBody, by: Principal): Promise<Job> {
    const { site, app } = await this.resolveEnabled(ref, appId);
    return this.enqueue(site, { app: app.id, operation: 'snapshot', message: body.message ?? '' }, by);
  }

  async listSnapshots(ref: SiteRef, appId: string): Promise<SnapshotModel[]> {
    const { site, app } = await this.resolve(ref, appId);
    return (await this.snapshots.list(site, app)).map(toSnapshotModel);
  }

  async diff(ref: SiteRef, appId: string, snapshotId: string): Promise<DiffSummary> {
    const { site, app } = await this.resolve(ref, appId);
    const snapshot = await this.findSnapshot(site, app, snapshotId);
    try {
      return await this.snapshots.diff(site, app, snapshot);
    } catch (error) {
      if (error instanceof JobFailure) throw new AppError(ErrorCode.WebappUnsupported, error.message);
      throw error;
    }
  }

  async startRollback(ref: SiteRef, appId: string, snapshotId: string, by: Principal): Promise<Job> {
    const { site, app } = await this.resolveEnabled(ref, appId);
    const snapshot = await this.findSnapshot(site, app, snapshotId);
    return this.enqueue(site, { app: app.id, operation: 'rollback', snapshot: snapshot.id }, by);
  }

  async startAssurance(
    ref: SiteRef,
    appId: string,
    body: StartAssuranceBody,
    by: Principal,
  ): Promise<{ assurance: Assurance; job: Job }> {
    const { site, app } = await this.resolveEnabled(ref, appId);
    let host = app.host;
    let urlPath = app.urlPath;
    if (body.url?.startsWith('/')) urlPath = body.url;
    else if (body.url) {
      const url = new URL(body.url);
      host = url.host;
      urlPath = `${url.pathname}${url.search}`;
    }
    const assurance = this.assurances.insert({
      site: site.id,
      app: app.id,
      host,
      urlPath,
      shrink: (body.shrinkPercent ?? DEFAULT_SHRINK_PERCENT) / 100,
      createdBy: by.name,
    });
    const job = this.enqueue(site, { app: app.id, operation: 'assurance', assurance: assurance.id }, by);
    this.assurances.setJob(assurance.id, 'prepare_job', job.id);
    return { assurance: this.assurances.get(assurance.id)!, job };
  }

  async getAssurance(ref: SiteRef, appId: string, id: string): Promise<Assurance> {
    const { site, app } = await this.resolve(ref, appId);
    return this.findAssurance(site, app, id);
  }

  async confirm(ref: SiteRef, appId: string, id: string, by: Principal): Promise<Job> {
    const { site, app } = await this.resolve(ref, appId);
    const assurance = this.findAssurance(site, app, id);
    if (!this.assurances.transition(assurance.id, ['ready'], 'confirming')) {
      throw new AppError(
        ErrorCode.AssuranceNotReady,
        `Update assurance ${assurance.id} is ${this.assurances.get(assurance.id)?.status}; only a ready one can be confirmed.`,
      );
    }
    const job = this.enqueue(site, { app: app.id, operation: 'confirm', assurance: assurance.id }, by);
    this.assurances.setJob(assurance.id, 'confirm_job', job.id);
    return job;
  }

  async run(run: JobRun): Promise<Record<string, unknown>> {
    const params = run.job.params as unknown as WebappJobParams;
    const site = await this.sites.resolve({ kind: 'id', id: run.job.site! });
    const app = await this.detector.find(site, params.app);
    if (!app) throw new JobFailure('webapp-not-found', `the web app ${params.app} is no longer found in ${site.id}`);
    switch (params.operation) {
      case 'snapshot': {
        const snapshot = await run.step('snapshot', () =>
          this.snapshots.take(site, app, params.message ?? '', 'manual', run),
        );
        return { app: app.id, snapshot: toSnapshotModel(snapshot) };
      }
      case 'rollback': {
        const snapshot = await this.snapshotForJob(site, app, params.snapshot!);
        const outcome = await run.step('rollback', () => this.snapshots.rollback(site, app, snapshot, run));
        return { app: app.id, rollback: outcome };
      }
      case 'assurance':
        return this.prepareAssurance(run, site, app, params.assurance!);
      case 'confirm':
        return this.confirmAssurance(run, site, app, params.assurance!);
    }
  }

  /** A job the service died in: a half-done rollback goes back to its safety snapshot; its assurance has failed. */
  async recover(job: Job): Promise<void> {
    const params = job.params as unknown as WebappJobParams;
    if (params.assurance) {
      this.assurances.transition(params.assurance, ['preparing', 'confirming'], 'failed', {
        reasons: ['the service stopped while this ran'],
      });
    }
    if (params.operation !== 'rollback' && params.operation !== 'confirm') return;
    try {
      const site = await this.sites.resolve({ kind: 'id', id: job.site! });
      const app = await this.detector.find(site, params.app);
      if (!app) return;
      const context = {
        jobId: job.id,
        signal: new AbortController().signal,
        workDir: this.config.dataPath('work', `${job.id}-recovery`),
        log: (line: string) => this.logger.warn(line),
        progress: () => undefined,
        trackPid: () => undefined,
      };
      const { mkdir, rm } = await import('node:fs/promises');
      await mkdir(context.workDir, { recursive: true, mode: 0o700 });
      try {
        if (await this.snapshots.recover(site, app, context)) {
          this.logger.warn(`${site.id} ${app.id}: put back the state an interrupted rollback had started from`);
        }
      } finally {
        await rm(context.workDir, { recursive: true, force: true });
      }
    } catch (error) {
      this.logger.error({ err: error, jobId: job.id }, 'recovering an interrupted web app rollback failed');
    }
  }

  private async prepareAssurance(run: JobRun, site: Site, app: DetectedWebapp, id: string) {
    const assurance = this.assurances.get(id)!;
    try {
      const snapshot = await run.step('snapshot', () =>
        this.snapshots.take(site, app, `before update (assurance ${id})`, 'pre-update', run),
      );
      const baseline = await run.step(
        'baseline',
        () => this.checker.check(this.config.webappCheckOrigin, assurance.host, assurance.urlPath),
        (page) => `status ${page.status}, ${page.bytes} bytes, title ${JSON.stringify(page.title)}`,
      );
      if (baseline.error) throw new JobFailure('baseline-failed', `the page did not answer: ${baseline.error}`);
      this.assurances.transition(id, ['preparing'], 'ready', { snapshot: snapshot.id, baseline });
      return { app: app.id, assurance: { id, status: 'ready', snapshot: snapshot.id, baseline } };
    } catch (error) {
      this.assurances.transition(id, ['preparing'], 'failed', { reasons: [(error as Error).message] });
      throw error;
    }
  }

  private async confirmAssurance(run: JobRun, site: Site, app: DetectedWebapp, id: string) {
    const assurance = this.assurances.get(id)!;
    try {
      const now = await run.step(
        'check',
        () => this.checker.check(this.config.webappCheckOrigin, assurance.host, assurance.urlPath),
        (page) => `status ${page.status}, ${page.bytes} bytes, title ${JSON.stringify(page.title)}`,
      );
      const verdict = judge(assurance.baseline!, now, assurance.shrink);
      if (!verdict.broken) {
        run.skipStep('rollback', 'the app answers as before the update');
        this.assurances.transition(id, ['confirming'], 'confirmed', { lastCheck: now });
        return { app: app.id, assurance: { id, outcome: 'confirmed', reasons: [], check: now } };
      }
      run.log(`${app.id}: broken after the update: ${verdict.reasons.join('; ')}`);
      const snapshot = await this.snapshotForJob(site, app, assurance.snapshot!);
      const outcome = await run.step(
        'rollback',
        () => this.snapshots.rollback(site, app, snapshot, run),
        () => verdict.reasons.join('; '),
      );
      this.assurances.transition(id, ['confirming'], 'rolled-back', { lastCheck: now, reasons: verdict.reasons });
      return {
        app: app.id,
        assurance: { id, outcome: 'rolled-back', reasons: verdict.reasons, check: now, rollback: outcome },
      };
    } catch (error) {
      this.assurances.transition(id, ['confirming'], 'failed', { reasons: [(error as Error).message] });
      throw error;
    }
  }

  private enqueue(site: Site, params: WebappJobParams, by: Principal): Job {
    const steps: Record<Operation, string[]> = {
      snapshot: ['snapshot'],
      rollback: ['rollback'],
      assurance: ['snapshot', 'baseline'],
      confirm: ['check', 'rollback'],
    };
    return this.engine.enqueue({
      kind: 'webapp',
      site: site.id,
      provider: null,
      level: params.operation,
      params: { ...params },
      requestedBy: by.name,
      steps: steps[params.operation],
    });
  }

  private async resolve(ref: SiteRef, appId: string): Promise<{ site: Site; app: DetectedWebapp }> {
    const site = await this.sites.resolve(ref);
    const app = /^[A-Za-z0-9-]{1,64}$/.test(appId) ? await this.detector.find(site, appId) : undefined;
    if (!app) {
      throw new AppError(ErrorCode.WebappNotFound, `No web app ${JSON.stringify(appId.slice(0, 64))} in ${site.id}.`);
    }
    return { site, app };
  }

  private async resolveEnabled(ref: SiteRef, appId: string): Promise<{ site: Site; app: DetectedWebapp }> {
    const found = await this.resolve(ref, appId);
    const state = await this.store.read(found.site, found.app.id);
    if (!state?.enabled) {
      throw new AppError(
        ErrorCode.WebappSnapshotsDisabled,
        `Snapshots are not enabled for ${found.app.id}; PUT {"enabled": true} to .../snapshots first.`,
      );
    }
    return found;
  }

  private async findSnapshot(site: Site, app: DetectedWebapp, id: string): Promise<StoredSnapshot> {
    const snapshot = COMMIT.test(id) ? await this.snapshots.find(site, app, id) : undefined;
    if (!snapshot)
      throw new AppError(ErrorCode.SnapshotNotFound, `No snapshot ${JSON.stringify(id.slice(0, 64))} of ${app.id}.`);
    return snapshot;
  }

  private async snapshotForJob(site: Site, app: DetectedWebapp, id: string): Promise<StoredSnapshot> {
    const snapshot = await this.snapshots.find(site, app, id);
    if (!snapshot) throw new JobFailure('snapshot-not-found', `snapshot ${id} of ${app.id} is gone`);
    return snapshot;
  }

  private findAssurance(site: Site, app: DetectedWebapp, id: string): Assurance {
    const assurance = UUID.test(id) ? this.assurances.get(id) : undefined;
    if (!assurance || assurance.site !== site.id || assurance.app !== app.id) {
      throw new AppError(
        ErrorCode.AssuranceNotFound,
        `No update assurance ${JSON.stringify(id.slice(0, 64))} of ${app.id}.`,
      );
    }
    return assurance;
  }

  private async toModel(site: Site, app: DetectedWebapp): Promise<WebappModel> {
    const state = await this.store.read(site, app.id);
    const newest = state?.snapshots.at(-1);
    return {
      id: app.id,
      path: app.path,
      type: app.type,
      version: app.version,
      database: app.database,
      snapshots: {
        enabled: state?.enabled ?? false,
        includeUploads: state?.includeUploads ?? false,
        count: state?.snapshots.length ?? 0,
        newest: newest?.createdAt ?? null,
      },
    };
  }
}

export function toSnapshotModel(snapshot: StoredSnapshot): SnapshotModel {
  return {
    id: snapshot.id,
    time: snapshot.createdAt,
    message: snapshot.message,
    kind: snapshot.kind,
    filesChanged: snapshot.filesChanged,
    database: snapshot.database
      ? {
          engine: snapshot.database.engine,
          name: snapshot.database.name,
          bytes: snapshot.database.bytes,
          sha256: snapshot.database.sha256,
        }
      : null,
  };
}
