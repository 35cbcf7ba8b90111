// When to renew, how long to wait after a failure, how many ACME orders to allow, when to
// warn. Pure functions of their inputs (time and randomness are passed in), tested as tables.
//
// The numbers follow certmagic and Let's Encrypt's advice: renew with a third of the lifetime
// left (never "60 days after issue": lifetimes are shrinking to 45 days), keep serving the
// current certificate while renewals fail, and warn a human when a week is left.

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

export interface Validity {
  notBefore: Date;
  notAfter: Date;
}

/** The fraction of a certificate's lifetime that is left when renewal starts. */
export const RENEWAL_WINDOW_RATIO = 1 / 3;

export function renewAt(cert: Validity): Date {
  const lifetime = cert.notAfter.getTime() - cert.notBefore.getTime();
  return new Date(cert.notBefore.getTime() + lifetime * (1 - RENEWAL_WINDOW_RATIO));
}

/** A host needs a new certificate when it has none, has one from another signer, or is in its renewal window. */
export function needsCertificate(current: (Validity & { issuerId: string }) | undefined, wantedIssuerId: string, now: Date): boolean {
  if (current === undefined || current.issuerId !== wantedIssuerId) return true;
  return now.getTime() >= renewAt(current).getTime();
}

export interface BackoffOptions {
  /** Delay after the first failure. */
  baseMs: number;
  /** Cap on any delay, jitter included. */
  maxMs: number;
  /** Spread, as a fraction of the delay: 0.2 gives 80 %..120 %. */
  jitter: number;
}

export const DEFAULT_BACKOFF: BackoffOptions = { baseMs: 60_000, maxMs: 6 * HOUR_MS, jitter: 0.2 };

/** Delay before the next attempt after `failures` consecutive failures (>= 1); `random` is in [0, 1). */
export function backoffDelayMs(failures: number, opts: BackoffOptions, random: number): number {
  const exponent = Math.min(Math.max(failures, 1) - 1, 30);
  const delay = opts.baseMs * 2 ** exponent;
  const jittered = delay * (1 - opts.jitter + 2 * opts.jitter * random);
  return Math.round(Math.min(jittered, opts.maxMs));
}

export interface OrderBudget {
  /** ACME orders allowed per window, across all hosts. */
  limit: number;
  windowMs: number;
}

export const DEFAULT_ORDER_BUDGET: OrderBudget = { limit: 10, windowMs: HOUR_MS };

export interface BudgetDecision {
  allowed: boolean;
  /** The order times still inside the window: what to keep (and persist). */
  recent: number[];
  /** When `allowed` is false: the earliest time an order fits again. */
  retryAt?: number;
}

/**
 * A rolling window over wall-clock order times (they are persisted, so a crash loop cannot
 * reset the budget). A time in the future means the clock went back: it counts as "now",
 * so the budget errs on the side of fewer orders without blocking for the whole jump.
 */
export function checkOrderBudget(orderTimes: readonly number[], now: number, budget: OrderBudget): BudgetDecision {
  const recent = orderTimes.map((t) => Math.min(t, now)).filter((t) => t > now - budget.windowMs).sort((a, b) => a - b);
  if (recent.length < budget.limit) return { allowed: true, recent };
  return { allowed: false, recent, retryAt: recent[recent.length - budget.limit]! + budget.windowMs };
}

/** How close to expiry failing renewals raise the CertificateExpiring warning. */
export const EXPIRING_WARNING_MS = 7 * DAY_MS;

export function isExpiring(notAfter: Date | undefined, now: Date, renewalFailing: boolean): boolean {
  return renewalFailing && notAfter !== undefined && notAfter.getTime() - now.getTime() <= EXPIRING_WARNING_MS;
}
