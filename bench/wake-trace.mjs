// Preloaded into `berth run` by bench/wake.mjs (node --import): times each Docker call, health
// probe, wake and backend change of the built berth, without changing it, as JSON lines in
// $BERTH_TRACE_FILE: {t: epoch ms when the step ended, op, ms: its duration, …}.
import { appendFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

const file = process.env.BERTH_TRACE_FILE;
const root = new URL('../dist/', import.meta.url);
const epoch = () => performance.timeOrigin + performance.now();
const write = (o) => appendFileSync(file, `${JSON.stringify(o)}\n`);

function wrap(target, name, label, describe = () => ({})) {
  const original = target[name];
  target[name] = function traced(...args) {
    const t0 = performance.now();
    const end = (extra) => write({ t: epoch(), op: label, ms: performance.now() - t0, ...describe(args), ...extra });
    let out;
    try {
      out = original.apply(this, args);
    } catch (e) {
      end({ error: String(e) });
      throw e;
    }
    if (out && typeof out.then === 'function') {
      return out.then((v) => {
        end(label === 'probe' ? { ok: v.ok } : {});
        return v;
      }, (e) => {
        end({ error: String(e?.message ?? e) });
        throw e;
      });
    }
    end({});
    return out;
  };
}

if (file) {
  const { DockerContainerRuntime } = await import(new URL('src/docker/docker-container-runtime.js', root).href);
  const { healthProber } = await import(new URL('src/health/health-prober.js', root).href);
  const { WakeCoordinator } = await import(new URL('src/proxy/wake-coordinator.js', root).href);
  const { Traffic } = await import(new URL('src/operator/traffic.js', root).href);
  const p = DockerContainerRuntime.prototype;
  for (const m of ['listContainers', 'inspectImage', 'networkExists', 'listVolumes', 'startContainer', 'stopContainer', 'inspectContainer']) wrap(p, m, m);
  wrap(healthProber, 'probe', 'probe');
  wrap(WakeCoordinator.prototype, 'start', 'wake.start', ([app]) => ({ app }));
  const settle = WakeCoordinator.prototype.settle;
  WakeCoordinator.prototype.settle = function traced(flight, error, backoff) {
    if (!flight.settled) write({ t: epoch(), op: 'wake.settled', app: flight.app, ok: error === undefined, held: flight.waiters.size });
    return settle.call(this, flight, error, backoff);
  };
  const appChanged = Traffic.prototype.appChanged;
  Traffic.prototype.appChanged = function traced(name) {
    const r = appChanged.call(this, name);
    write({ t: epoch(), op: 'app.changed', app: name, state: this.registry.get(name)?.state, machine: this.manager.runner(name)?.state });
    return r;
  };
}
