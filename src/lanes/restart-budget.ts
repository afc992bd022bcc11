/**
 * How soon a lane that died may start again. Deaths are counted in a sliding time window, not
 * over the process's life: a burst (fds used up by idle connections made a lane die six times
 * within milliseconds) must not leave the lane down for good. Within the budget a lane starts
 * again at once; beyond it, after a pause that doubles up to a cap, while the lane shows
 * Failed (readyz 503) - and it keeps trying, so it comes back once the cause is gone.
 */
export class RestartBudget {
  private deaths: number[] = [];

  constructor(
    /** Restarts at once allowed within the window. */
    private readonly max = 5,
    private readonly windowMs = 60_000,
    private readonly firstPauseMs = 1000,
    private readonly maxPauseMs = 30_000,
  ) {}

  /** A death at `now`: the pause before the restart (0 = at once). */
  pauseAfterDeath(now: number): number {
    this.deaths = this.deaths.filter((t) => now - t < this.windowMs);
    this.deaths.push(now);
    const over = this.deaths.length - this.max;
    if (over <= 0) return 0;
    return Math.min(this.maxPauseMs, this.firstPauseMs * 2 ** Math.min(over - 1, 20));
  }

  /** Deaths within the window ending at `now`. */
  recent(now: number): number {
    return this.deaths.filter((t) => now - t < this.windowMs).length;
  }
}
