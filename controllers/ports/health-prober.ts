// Readiness as berth judges it itself (images need no HEALTHCHECK): a TCP connect on the
// port, then, when a path is configured, an HTTP GET answered below 500.
export interface HealthProbe {
  host: string;
  port: number;
  path?: string;
  timeoutMs: number;
}

export interface ProbeResult {
  ok: boolean;
  /** What happened, for the status message when it never becomes healthy. */
  detail: string;
}

export interface HealthProber {
  probe(p: HealthProbe, signal?: AbortSignal): Promise<ProbeResult>;
}
