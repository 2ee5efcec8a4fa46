/** How the dispatcher sends and retries. */
export interface WebhookSettings {
  /** Delay before the first retry; each further retry doubles it (with ±20 % jitter). */
  retryBaseMs: number;
  /** The longest wait between two attempts. */
  retryMaxDelayMs: number;
  /** A delivery not delivered this long after it was written is given up (`failed`). */
  retryForMs: number;
  /** A delivery is given up after this many attempts, whatever its age. */
  maxAttempts: number;
  /** One attempt (connect, send, response) may take this long. */
  timeoutMs: number;
  /** Attempts in flight at once, over every receiver; one receiver gets one at a time. */
  concurrency: number;
}

export const WEBHOOK_SETTINGS = Symbol('WEBHOOK_SETTINGS');

export const DEFAULT_WEBHOOK_SETTINGS: WebhookSettings = {
  retryBaseMs: 1000,
  retryMaxDelayMs: 10 * 60 * 1000,
  retryForMs: 24 * 60 * 60 * 1000,
  maxAttempts: 200,
  timeoutMs: 10_000,
  concurrency: 4,
};

/** The wait before the next attempt after `attempts` failed ones: doubling from the base, capped, ±20 % jitter. */
export function retryDelayMs(settings: WebhookSettings, attempts: number, random: () => number = Math.random): number {
  const exponential = Math.min(settings.retryBaseMs * 2 ** Math.max(0, attempts - 1), settings.retryMaxDelayMs);
  return Math.min(Math.round(exponential * (0.8 + 0.4 * random())), settings.retryMaxDelayMs);
}
