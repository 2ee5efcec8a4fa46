/**
 * Waits for a condition to hold, checking it every `intervalMs`: tests wait on what they expect to happen, never for
 * a fixed time. The timeout only bounds a failure; it is generous because the machine may be loaded.
 */
export async function waitUntil(
  check: () => boolean | Promise<boolean>,
  {
    timeoutMs = 30_000,
    intervalMs = 5,
    what = 'the condition',
  }: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<void> {
  await eventually(what, check, { timeoutMs, intervalMs });
}

/**
 * Polls `check` until it returns a truthy value, and returns that value; throws naming `what` after `timeoutMs`
 * (a bound on failure only: generous, as the machine may be loaded).
 */
export async function eventually<T>(
  what: string,
  check: () => T | Promise<T>,
  { timeoutMs = 60_000, intervalMs = 50 }: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}

/**
 * The kernel stamps file times from its coarse clock, which runs up to a few jiffies (≤ 10 ms at HZ=100) behind the
 * clock Date.now() reads: a file written 1 ms after a second began can still get the previous second as its mtime.
 */
const COARSE_CLOCK_LAG_MS = 30;

/**
 * Waits until the wall clock is in a later whole second than when called, and far enough into it that a file written
 * now gets that second as its mtime (see COARSE_CLOCK_LAG_MS). Duplicity names restore points and checks mtimes to the
 * second: two runs, or a run and a file change, must not share one. Waiting for the clock is not a race (nothing else
 * is being waited for), and this never waits more than a second and COARSE_CLOCK_LAG_MS.
 */
export async function nextWholeSecond(): Promise<void> {
  const until = (Math.floor(Date.now() / 1000) + 1) * 1000 + COARSE_CLOCK_LAG_MS;
  while (Date.now() < until) {
    await new Promise((resolve) => setTimeout(resolve, until - Date.now() + 1));
  }
}
