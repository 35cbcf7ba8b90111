// Counts the Docker API calls berth makes, by method, for /metrics (and the benchmark that
// proves an unchanged world costs no mutating call).
import type { ContainerRuntime } from '../../controllers/ports/container-runtime.js';

export function countingRuntime(inner: ContainerRuntime, counts: Map<string, number>): ContainerRuntime {
  return new Proxy(inner, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function' || typeof prop !== 'string') return value;
      return (...args: unknown[]) => {
        counts.set(prop, (counts.get(prop) ?? 0) + 1);
        return (value as (...a: unknown[]) => unknown).apply(target, args);
      };
    },
  });
}
