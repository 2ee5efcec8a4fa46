/** The scopes this service exposes, with the panel's own default. */
export const KNOWN_SCOPES = {
  'backups.automatic-database-exports': {
    type: 'boolean' as const,
    default: true,
    description:
      'Whether the panel exports every database nightly on its own (anacron). When false, each backup exports first.',
  },
};

export type ScopeName = keyof typeof KNOWN_SCOPES;
export const AUTOMATIC_DATABASE_EXPORTS: ScopeName = 'backups.automatic-database-exports';

export function isKnownScope(name: string): name is ScopeName {
  return Object.prototype.hasOwnProperty.call(KNOWN_SCOPES, name);
}
