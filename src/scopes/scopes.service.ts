import { Inject, Injectable, Logger } from '@nestjs/common';
import { AppError } from '../common/errors/app-error';
import { ErrorCode } from '../common/errors/error-code';
import { KNOWN_SCOPES, isKnownScope, type ScopeName } from './known-scopes';
import { SCOPE_STORE, type ScopeStore } from './scope-store';
import type { ScopeModel } from './scope.model';

@Injectable()
export class ScopesService {
  private readonly logger = new Logger(ScopesService.name);

  constructor(@Inject(SCOPE_STORE) private readonly store: ScopeStore) {}

  async get(name: string): Promise<ScopeModel> {
    const scope = this.known(name);
    const stored = await this.store.get(scope);
    const value =
      stored === undefined || stored === '' ? KNOWN_SCOPES[scope].default : parseBooleanValue(stored, scope);
    return { name: scope, value, source: this.store.source };
  }

  async set(name: string, value: boolean, by: string): Promise<ScopeModel> {
    const scope = this.known(name);
    await this.store.set(scope, value ? 'true' : 'false');
    this.logger.log({ scope, value, by }, 'scope changed');
    return this.get(scope);
  }

  /** Convenience for the services that act on the automatic exports setting. */
  async automaticDatabaseExports(): Promise<boolean> {
    return (await this.get('backups.automatic-database-exports')).value;
  }

  private known(name: string): ScopeName {
    if (!isKnownScope(name)) {
      throw new AppError(
        ErrorCode.ScopeNotFound,
        `No scope ${JSON.stringify(name.slice(0, 100))}; known: ${Object.keys(KNOWN_SCOPES).join(', ')}.`,
      );
    }
    return name;
  }
}

function parseBooleanValue(raw: string, scope: string): boolean {
  const text = raw
    .trim()
    .replace(/^"(.*)"$/, '$1')
    .toLowerCase();
  if (['1', 'true', 'yes', 'on'].includes(text)) return true;
  if (['0', 'false', 'no', 'off'].includes(text)) return false;
  throw new AppError(
    ErrorCode.ScopeStoreFailed,
    `The panel returned ${JSON.stringify(raw.slice(0, 100))} for ${scope}, not a boolean.`,
  );
}
