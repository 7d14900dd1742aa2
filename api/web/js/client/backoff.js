// Exponential backoff with full jitter: the n-th retry waits a uniformly random time in
// [0, min(cap, base * 2^n)], so clients that lost the same server spread out instead of
// coming back in waves. No I/O.

export const DEFAULT_POLICY = Object.freeze({ baseMs: 500, capMs: 30_000, stableAfterMs: 10_000 });

export class Backoff {
  /** `random` returns numbers in [0, 1) (injected by tests). */
  constructor(policy = DEFAULT_POLICY, random = Math.random) {
    this.policy = policy;
    this.random = random;
    this.attempt = 0;
  }

  /** The longest the next delay may be. */
  ceiling() {
    return Math.min(this.policy.capMs, this.policy.baseMs * 2 ** Math.min(this.attempt, 62));
  }

  /** The delay before the next attempt; each call doubles the ceiling up to the cap. */
  nextDelay() {
    const delay = this.random() * this.ceiling();
    this.attempt += 1;
    return delay;
  }

  /** A short random spread (up to `base`) that does not count as a failure. */
  jitter() {
    return this.random() * this.policy.baseMs;
  }

  reset() {
    this.attempt = 0;
  }
}
