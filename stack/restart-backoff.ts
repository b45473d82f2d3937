// When to restart a part of the stack that died: at once-ish the first time, then twice as long
// after each death in a row, up to a cap. A part that dies again and again (it never stays up
// long enough to count as recovered) is in a crash loop: that is said loudly on every death, and
// it is retried at a slower, fixed pace, so a broken part neither spins the CPU nor is given up on
// (the cause may go away: a port freed, a file restored).
//
// Time is passed in: the decision depends only on how long the part stayed up.

export interface RestartPolicy {
  /** The delay before the first restart after a part that had been up. */
  initialDelayMs: number;
  /** Each death in a row doubles the delay up to this. */
  maxDelayMs: number;
  /** A part up at least this long had recovered: its next death starts again at initialDelayMs. */
  stableAfterMs: number;
  /** This many deaths in a row make a crash loop. */
  crashLoopDeaths: number;
  /** The delay between attempts in a crash loop. */
  crashLoopDelayMs: number;
}

export const DEFAULT_RESTART_POLICY: Readonly<RestartPolicy> = Object.freeze({
  initialDelayMs: 250,
  maxDelayMs: 8_000,
  stableAfterMs: 30_000,
  crashLoopDeaths: 6,
  crashLoopDelayMs: 30_000,
});

export interface RestartDecision {
  /** Deaths in a row, this one included. */
  deathsInARow: number;
  delayMs: number;
  crashLoop: boolean;
}

export class RestartBackoff {
  #deathsInARow = 0;

  constructor(private readonly policy: Readonly<RestartPolicy> = DEFAULT_RESTART_POLICY) {}

  /** A death (or a failed start) after the part had been up for `upForMs` (0 when it never came up). */
  died(upForMs: number): RestartDecision {
    if (upForMs >= this.policy.stableAfterMs) this.#deathsInARow = 0;
    this.#deathsInARow++;
    const crashLoop = this.#deathsInARow >= this.policy.crashLoopDeaths;
    const doubling = this.policy.initialDelayMs * 2 ** Math.min(this.#deathsInARow - 1, 30);
    const delayMs = crashLoop
      ? Math.max(this.policy.crashLoopDelayMs, this.policy.maxDelayMs)
      : Math.min(doubling, this.policy.maxDelayMs);
    return { deathsInARow: this.#deathsInARow, delayMs, crashLoop };
  }
}
