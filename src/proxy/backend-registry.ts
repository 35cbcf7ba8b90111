// The in-memory BackendSource the controller writes into: set an app's backend, and the proxy
// (subscribed) evicts stale upstream sockets and re-arms idle timers for that app.
import type { AppBackend, BackendSource } from './types.js';

export class BackendRegistry implements BackendSource {
  private readonly backends = new Map<string, AppBackend>();
  private readonly listeners = new Set<(app: string) => void>();

  get(app: string): AppBackend | undefined {
    return this.backends.get(app);
  }

  /** Replaces the app's backend; pass a new object (the proxy never sees in-place edits). */
  set(app: string, backend: AppBackend): void {
    this.backends.set(app, Object.freeze({ ...backend, endpoints: Object.freeze([...backend.endpoints]) }));
    this.emit(app);
  }

  delete(app: string): void {
    if (this.backends.delete(app)) this.emit(app);
  }

  subscribe(listener: (app: string) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit(app: string): void {
    for (const l of this.listeners) l(app);
  }
}
