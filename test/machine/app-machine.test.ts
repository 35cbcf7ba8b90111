// The App controller's outcomes, on the in-memory runtime with a simulated clock.
import { describe, it, expect, beforeEach } from 'vitest';
import { BerthError } from '../../controllers/ports/errors.js';
import { BACKOFF_CAP_MS, HEALTHY_RESET_MS } from '../../controllers/app/app.machine.js';
import { Harness, desiredFrom, CONFIG } from '../helpers/app-harness.js';
import { appYaml } from '../helpers/berth-process.js';

const V1 = 'registry.test/web:1';
const V2 = 'registry.test/web:2';
const web = (image = V1, extra = '') => desiredFrom(appYaml('app', `image: ${image}\n${extra}`));

let h: Harness;
beforeEach(() => {
  h = new Harness();
  h.runtime.addImage(V1);
  h.runtime.addImage(V2);
});

describe('the App machine', () => {
  describe('success', () => {
    it('deploys one healthy container, reports Ready, and looks again after a jittered resync', async () => {
      h.start(web());
      await h.until('ready');
      expect(h.containers().map((c) => c.state)).toEqual(['running']);
      expect(h.status().phase).toBe('Ready');
      expect(h.condition('Ready')).toMatchObject({ status: 'True', reason: 'Available' });
      expect(h.actor.getSnapshot().context.facts.history).toMatchObject([{ result: 'Succeeded', image: V1 }]);
      // random() = 0.5 gives exactly the configured resync (60 s) within the ±20 % jitter.
      expect(h.actor.getSnapshot().context.resyncDelayMs).toBe(60_000);
      h.runtime.calls.length = 0;
      await h.advance(59_000);
      expect(h.state).toBe('ready');
      await h.advance(1_000);
      await h.until('ready');
      expect(h.runtime.calls).toEqual([]);
    });

    it('pulls an image that is not present (IfNotPresent)', async () => {
      h.runtime.addRegistryImage('registry.test/new:1');
      h.start(web('registry.test/new:1'));
      await h.until('ready');
      expect(h.runtime.calls.map((c) => c.method)).toContain('pullImage');
      expect(h.condition('ImageReady')).toMatchObject({ status: 'True', reason: 'Present' });
    });

    it('rolls a new version forward: the new container is healthy before the old one is removed', async () => {
      h.start(web(V1));
      await h.until('ready');
      const old = h.containers()[0]!.id;
      h.runtime.calls.length = 0;
      h.actor.send({ type: 'spec.changed', desired: web(V2) });
      await h.until('ready');
      const order = h.runtime.calls.map((c) => `${c.method}:${c.target === old ? 'old' : 'new'}`);
      expect(order.indexOf('startContainer:new')).toBeLessThan(order.indexOf('stopContainer:old'));
      expect(h.containers().map((c) => c.image)).toEqual([V2]);
    });

    it('with strategy recreate, stops the old container before creating the new one', async () => {
      h.start(web(V1, 'deploy: {strategy: recreate}'));
      await h.until('ready');
      h.runtime.calls.length = 0;
      h.actor.send({ type: 'spec.changed', desired: web(V2, 'deploy: {strategy: recreate}') });
      await h.until('ready');
      const methods = h.runtime.calls.map((c) => c.method);
      expect(methods.indexOf('removeContainer')).toBeLessThan(methods.indexOf('createContainer'));
    });

    it('scales replicas up and down without touching the others', async () => {
      h.start(web(V1, 'replicas: 3'));
      await h.until('ready');
      expect(h.containers()).toHaveLength(3);
      const kept = h.containers().filter((c) => c.labels['dev.berth.replica'] === '0')[0]!.id;
      h.actor.send({ type: 'spec.changed', desired: web(V1, 'replicas: 1') });
      await h.until('ready');
      expect(h.containers().map((c) => c.id)).toEqual([kept]);
    });
  });

  describe('transient errors', () => {
    it('back off from 1 s doubling, shown as retry.attempt and retry.nextAt, then recover', async () => {
      const boom = () => new BerthError('transient', 'DockerError', 'engine hiccup');
      for (let i = 0; i < 3; i++) h.runtime.failNext('createContainer', boom());
      h.start(web());
      await h.until('backoff');
      expect(h.status().retry).toEqual({ attempt: 1, nextAt: new Date(h.now().getTime() + 1000).toISOString() });
      expect(h.status().lastError).toMatchObject({ reason: 'DockerError' });
      await h.advance(1000);
      await h.until('backoff');
      expect(h.status().retry?.attempt).toBe(2);
      expect(h.actor.getSnapshot().context.retryDelayMs).toBe(2000);
      await h.advance(2000);
      await h.until('backoff');
      expect(h.actor.getSnapshot().context.retryDelayMs).toBe(4000);
      await h.advance(4000);
      await h.until('ready');
      expect(h.status().lastError).toBeUndefined();
      expect(h.status().retry).toBeUndefined();
    });

    it('cap the backoff at 5 minutes and keep jitter within ±20 %', async () => {
      h.random = () => 1;
      h.runtime.setReachable(false);
      h.start(web());
      for (let i = 0; i < 12; i++) {
        await h.until('backoff');
        await h.advance(h.actor.getSnapshot().context.retryDelayMs);
      }
      await h.until('backoff');
      expect(h.actor.getSnapshot().context.retryDelayMs).toBe(BACKOFF_CAP_MS * 1.2);
    });

    it('start the backoff over after a healthy period', async () => {
      h.start(web());
      await h.until('ready');
      h.runtime.failNext('listContainers', new BerthError('transient', 'DockerError', 'one'));
      h.actor.send({ type: 'reconcile' });
      await h.until('backoff');
      await h.advance(1000);
      await h.until('ready');
      h.runtime.failNext('listContainers', new BerthError('transient', 'DockerError', 'two'));
      h.actor.send({ type: 'reconcile' });
      await h.until('backoff');
      expect(h.actor.getSnapshot().context.attempt).toBe(2);
      await h.advance(2000);
      await h.until('ready');
      await h.advance(HEALTHY_RESET_MS);
      await h.until('ready');
      h.runtime.failNext('listContainers', new BerthError('transient', 'DockerError', 'three'));
      h.actor.send({ type: 'reconcile' });
      await h.until('backoff');
      expect(h.actor.getSnapshot().context.attempt).toBe(1);
    });
  });

  describe('deterministic failures', () => {
    it('a new version that exits at once is rolled back: the old one serves, Ready stays True, nothing is retried', async () => {
      h.start(web(V1));
      await h.until('ready');
      h.runtime.setImageBehaviour(V2, 'crash');
      h.actor.send({ type: 'spec.changed', desired: web(V2) });
      await h.until('ready');
      expect(h.containers().map((c) => c.image)).toEqual([V1]);
      expect(h.status().phase).toBe('Degraded');
      expect(h.condition('Ready')).toMatchObject({ status: 'True' });
      expect(h.condition('Stalled')).toMatchObject({ status: 'True', reason: 'RolloutFailed' });
      expect(h.condition('Stalled')?.message).toMatch(/exited .* before becoming healthy; the previous version keeps serving/);
      expect(h.actor.getSnapshot().context.facts.history.at(-1)).toMatchObject({ result: 'RolledBack', image: V2 });
      h.runtime.calls.length = 0;
      for (let i = 0; i < 5; i++) await h.advance(60_000);
      expect(h.runtime.calls.filter((c) => c.method === 'createContainer')).toEqual([]);
    });

    it('a new version that never listens fails its start period and is rolled back', async () => {
      h.start(web(V1));
      await h.until('ready');
      h.silent.add(V2);
      h.actor.send({ type: 'spec.changed', desired: web(V2, 'healthCheck: {startPeriodSeconds: 3}') });
      await h.until('ready');
      expect(h.condition('Stalled')?.message).toMatch(/not healthy within 3s/);
      expect(h.containers().map((c) => c.image)).toEqual([V1]);
    });

    it('a first version that fails is Failed with nothing running, until a retry is asked', async () => {
      h.runtime.setImageBehaviour(V1, 'crash');
      h.start(web(V1));
      await h.until('stalled');
      expect(h.status().phase).toBe('Failed');
      expect(h.condition('Ready')).toMatchObject({ status: 'False', reason: 'RolloutFailed' });
      expect(h.condition('Ready')?.message).toMatch(/exited with code 1 before becoming healthy/);
      expect(h.containers()).toEqual([]);
      h.runtime.setImageBehaviour(V1, 'run');
      h.actor.send({ type: 'retry' });
      await h.until('ready');
      expect(h.status().phase).toBe('Ready');
    });

    it('a spec change clears the failure', async () => {
      h.runtime.setImageBehaviour(V1, 'crash');
      h.start(web(V1));
      await h.until('stalled');
      h.actor.send({ type: 'spec.changed', desired: web(V2) });
      await h.until('ready');
      expect(h.containers().map((c) => c.image)).toEqual([V2]);
    });

    it('an invalid image name stalls until the spec changes', async () => {
      h.runtime.failNext('pullImage', new BerthError('stalled', 'InvalidImageName', 'invalid reference format'));
      h.start(web('registry.test/missing:1'));
      await h.until('stalled');
      expect(h.condition('Stalled')).toMatchObject({ reason: 'InvalidImageName' });
      await h.advance(10 * 60_000);
      expect(h.state).toBe('stalled');
    });

    it('a container squatting the name without berth labels is never removed: Conflict', async () => {
      const d = web();
      // The name berth will want: from a first run on another harness.
      const probe = new Harness();
      probe.runtime.addImage(V1);
      probe.start(d);
      await probe.until('ready');
      const name = probe.containers()[0]!.name;
      h.runtime.addForeignContainer(name, V1);
      h.start(d);
      await h.until('backoff');
      expect(h.condition('Stalled')).toMatchObject({ status: 'True', reason: 'Conflict' });
      expect(h.runtime.calls.filter((c) => c.method === 'removeContainer')).toEqual([]);
    });
  });

  describe('Docker unreachable', () => {
    it('every reconcile reports it and waits; nothing is torn down; Docker coming back resumes at once', async () => {
      h.start(web());
      await h.until('ready');
      const before = h.containers().map((c) => c.id);
      h.runtime.setReachable(false);
      h.actor.send({ type: 'reconcile' });
      await h.until('backoff');
      expect(h.condition('Ready')).toMatchObject({ status: 'Unknown', reason: 'DockerUnavailable' });
      await h.advance(1000);
      await h.until('backoff');
      h.runtime.setReachable(true);
      h.actor.send({ type: 'docker.changed' });
      await h.until('ready');
      expect(h.containers().map((c) => c.id)).toEqual(before);
    });
  });

  describe('spec changes', () => {
    it('abort in-flight work: a health wait for a version that never listens is cut short by a newer spec', async () => {
      h.start(web(V1));
      await h.until('ready');
      h.silent.add(V2);
      h.actor.send({ type: 'spec.changed', desired: web(V2, 'healthCheck: {startPeriodSeconds: 3600}') });
      await h.until('acting');
      h.actor.send({ type: 'spec.changed', desired: web('registry.test/web:3'.replace('3', '1'), 'env: {X: "1"}') });
      await h.until('ready');
      const images = h.containers().map((c) => c.image);
      expect(images).toEqual([V1]);
      expect(h.containers()[0]!.env).toContain('X=1');
    });
  });

  describe('drift', () => {
    it('re-creates a container removed behind its back, with an event saying so', async () => {
      h.start(web());
      await h.until('ready');
      h.runtime.removeBehindBack(h.containers()[0]!.id);
      h.actor.send({ type: 'reconcile' });
      await h.until('ready');
      expect(h.containers()).toHaveLength(1);
      expect(h.status().events?.at(-1)).toMatchObject({ type: 'Warning', reason: 'ContainerMissing' });
    });

    it('starts a stopped container and reconnects a disconnected one', async () => {
      h.start(web());
      await h.until('ready');
      const id = h.containers()[0]!.id;
      await h.runtime.stopContainer(id, 1);
      h.actor.send({ type: 'reconcile' });
      await h.until('ready');
      expect(h.containers()[0]!.state).toBe('running');
      h.runtime.disconnectBehindBack(CONFIG.network, id);
      h.actor.send({ type: 'reconcile' });
      await h.until('ready');
      expect(Object.keys(h.containers()[0]!.networks)).toContain(CONFIG.network);
      expect(h.status().events?.map((e) => e.reason)).toEqual(expect.arrayContaining(['ContainerStopped', 'NetworkDisconnected']));
    });

    it('puts the restart policy back after a docker update --restart=no, without replacing the container', async () => {
      h.start(web());
      await h.until('ready');
      const id = h.containers()[0]!.id;
      h.runtime.changeRestartPolicy(id, 'no');
      h.actor.send({ type: 'reconcile' });
      await h.until('ready');
      expect(h.containers().map((c) => c.id)).toEqual([id]);
      expect((await h.runtime.inspectContainer(id))?.restartPolicy).toBe('unless-stopped');
      expect(h.status().events?.at(-1)).toMatchObject({ type: 'Warning', reason: 'RestartPolicyChanged' });
    });

    it('recreates the network when it was removed', async () => {
      h.start(web());
      await h.until('ready');
      h.runtime.removeNetworkBehindBack(CONFIG.network);
      h.actor.send({ type: 'reconcile' });
      await h.until('ready');
      expect(h.runtime.calls.map((c) => c.method)).toContain('ensureNetwork');
    });

    it('an unchanged world costs no mutating call', async () => {
      h.start(web());
      await h.until('ready');
      h.runtime.calls.length = 0;
      for (let i = 0; i < 5; i++) {
        h.actor.send({ type: 'reconcile' });
        await h.until('ready');
      }
      expect(h.runtime.calls).toEqual([]);
    });
  });

  describe('replicas, pause and deletion', () => {
    it('replicas 0 keeps the app stopped', async () => {
      h.start(web());
      await h.until('ready');
      h.actor.send({ type: 'spec.changed', desired: web(V1, 'replicas: 0') });
      await h.until('sleeping');
      expect(h.containers().map((c) => c.state)).toEqual(['exited']);
      expect(h.condition('Ready')).toMatchObject({ status: 'False', reason: 'ScaledToZero' });
    });

    it('paused leaves everything alone, even drift', async () => {
      h.start(web());
      await h.until('ready');
      h.actor.send({ type: 'spec.changed', desired: web(V1, 'paused: true') });
      await h.until('paused');
      h.runtime.removeBehindBack(h.containers()[0]!.id);
      h.runtime.calls.length = 0;
      await h.advance(10 * 60_000);
      expect(h.runtime.calls).toEqual([]);
      expect(h.status().phase).toBe('Paused');
    });

    it('deletion removes the containers and only volumes that opted in', async () => {
      h.start(web(V1, 'volumes: [{name: keep, mountPath: /a}, {name: drop, mountPath: /b, reclaimPolicy: Delete}]'));
      await h.until('ready');
      h.actor.send({ type: 'spec.changed', desired: undefined });
      await waitDone();
      expect(h.containers()).toEqual([]);
      expect((await h.runtime.listVolumes({ 'dev.berth.app': 'app' })).map((v) => v.name)).toEqual(['mt-app-keep']);
    });
  });

  describe('sleep and wake', () => {
    it('an idle app stops on the idle signal, stays asleep across resyncs, and wakes on request', async () => {
      h.start(web(V1, 'idle: {after: 5m}'));
      await h.until('ready');
      h.actor.send({ type: 'idle' });
      await h.until('sleeping');
      expect(h.containers().map((c) => c.state)).toEqual(['exited']);
      expect(h.status().phase).toBe('Sleeping');
      expect(h.actor.getSnapshot().context.facts.sleepingSince).toBeDefined();
      await h.advance(120_000);
      await h.until('sleeping');
      expect(h.containers().map((c) => c.state)).toEqual(['exited']);
      h.runtime.calls.length = 0;
      h.actor.send({ type: 'wake' });
      await h.until('ready');
      expect(h.runtime.calls.map((c) => c.method)).toEqual(['startContainer']);
      expect(h.actor.getSnapshot().context.facts.sleepingSince).toBeUndefined();
    });

    it('an app that was asleep before a restart stays asleep', async () => {
      h.start(web(V1, 'idle: {after: 5m}'), { sleepingSince: '2026-01-01T00:00:00Z' });
      await h.until('sleeping');
      expect(h.containers()).toEqual([]);
    });

    it('ignores the idle signal for an app without idle settings', async () => {
      h.start(web());
      await h.until('ready');
      h.actor.send({ type: 'idle' });
      await h.advance(10);
      expect(h.state).toBe('ready');
    });
  });
});

async function waitDone(): Promise<void> {
  for (let i = 0; i < 200 && h.actor.getSnapshot().status !== 'done'; i++) await h.advance(0);
  expect(h.actor.getSnapshot().status).toBe('done');
}
