import { TokenBucket } from 'limiter';

/** What the guard says about a frame of messages. */
export type FloodVerdict = 'admit' | 'refuse' | 'refuse-and-warn' | 'close';

/**
 * The per-connection message rate limit: a token bucket (the `limiter` package) holding two
 * seconds' worth of messages. Over the limit, frames are refused, with a warning to the peer
 * at most once a second; a connection that keeps flooding for `closeAfterMs` is closed.
 * Workers batch results, so a healthy worker stays far below the limit.
 * @internal
 */
export class FloodGuard {
  private readonly bucket: TokenBucket;
  private readonly closeAfterMs: number;
  private overLimitSince = 0;
  private lastRefusalAt = 0;
  private lastWarningAt = 0;
  readonly perSecond: number;

  constructor(perSecond: number, closeAfterMs: number) {
    this.perSecond = perSecond;
    this.closeAfterMs = closeAfterMs;
    this.bucket = new TokenBucket({ bucketSize: perSecond * 2, tokensPerInterval: perSecond, interval: 'second' });
    this.bucket.content = this.bucket.bucketSize;
  }

  /** Judge a frame of `messages` messages arriving at `now`. */
  judge(messages: number, now = Date.now()): FloodVerdict {
    if (this.bucket.tryRemoveTokens(messages)) {
      // A flood still admits a frame now and then as tokens trickle back; it only counts as
      // over until a whole second passes without a refusal.
      if (now - this.lastRefusalAt > 1000) this.overLimitSince = 0;
      return 'admit';
    }
    this.lastRefusalAt = now;
    this.overLimitSince ||= now;
    if (now - this.overLimitSince > this.closeAfterMs) return 'close';
    if (now - this.lastWarningAt >= 1000) {
      this.lastWarningAt = now;
      return 'refuse-and-warn';
    }
    return 'refuse';
  }
}
