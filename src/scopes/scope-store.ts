export type ScopeSource = 'apiscp' | 'local';

/** Where scope values live: the panel (cpcmd) on an ApisCP server, the catalog elsewhere. */
export interface ScopeStore {
  readonly source: ScopeSource;
  get(name: string): Promise<string | undefined>;
  set(name: string, value: string): Promise<void>;
}

export const SCOPE_STORE = Symbol('SCOPE_STORE');
