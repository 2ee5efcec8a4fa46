import type { ReplayBudget } from '../policies/policy';
import type { RestorePoint } from '../providers/backup-provider';
import type { BackupLevel } from '../jobs/backup-level';

export interface BudgetDecision {
  level: BackupLevel;
  note: string;
}

/**
 * Whether the next incremental would push the newest point's replay past the budget, and the level to make instead:
 * a differential where the provider has one (it replays only the full and itself), else a full. Pure.
 * The incremental's own bytes are estimated by the newest incremental's (0 when there is none yet).
 */
export function budgetDecision(
  points: readonly RestorePoint[],
  budget: ReplayBudget | undefined,
  levels: readonly BackupLevel[],
): BudgetDecision | null {
  if (!budget) return null;
  const complete = points
    .filter((point) => point.state === 'complete')
    .sort((a, b) => b.time.localeCompare(a.time) || b.id.localeCompare(a.id));
  const newest = complete[0];
  if (!newest) return null; // the engine makes a full anyway
  const sets = (newest.replay?.sets ?? newest.chain.length) + 1;
  const lastIncremental = complete.find((point) => point.level === 'incremental');
  const replayBytes = newest.replay?.bytes ?? null;
  const bytes = replayBytes === null ? null : replayBytes + (lastIncremental?.bytes ?? 0);
  const reasons: string[] = [];
  if (budget.maxChain !== undefined && sets > budget.maxChain) {
    reasons.push(`replay ${sets} backups, over maxChain ${budget.maxChain}`);
  }
  if (budget.maxReplayBytes !== undefined && bytes !== null && bytes > budget.maxReplayBytes) {
    reasons.push(`read about ${bytes} bytes, over maxReplayBytes ${budget.maxReplayBytes}`);
  }
  if (reasons.length === 0) return null;
  const level: BackupLevel = levels.includes('differential') ? 'differential' : 'full';
  return {
    level,
    note:
      `restore-time budget: after another incremental, a restore of the newest point would ${reasons.join(' and ')}; ` +
      `made a ${level} instead${level === 'full' ? ' (this provider has no differential level)' : ''}`,
  };
}
