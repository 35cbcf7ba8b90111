// Builds for the App controllers: each goes through the build slot (one at a time by
// default, coalesced per app, memory-admitted, crash-safe), checks the exact commit out,
// builds, and prunes the app's old images down to what rollback needs.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { ContainerRuntime } from '../../controllers/ports/container-runtime.js';
import type { BuildSpec, ImageBuilderPort } from '../../controllers/ports/image-builder.js';
import { BuildQueue, type BuildQueueSnapshot, type InFlightBuild } from '../build/build-queue.js';
import { BuildFailedError, ImageBuilder } from '../build/image-builder.js';
import { BerthError } from '../../controllers/ports/errors.js';
import { faultPoint } from '../util/fault-point.js';
import type { GitSource } from '../git/git-source.js';
import { LABEL_APP, ownerLabels } from '../api/labels.js';
import type { StateStore } from '../state/state-store.js';
import type { Logger } from '../util/logger.js';

export interface BuildServiceOptions {
  runtime: ContainerRuntime;
  git: GitSource;
  state: StateStore;
  stateDir: string;
  instance: string;
  concurrency: number;
  log: Logger;
  /** Images kept per app (the running one and any a container still uses are always kept). */
  keepImages: (app: string) => number;
}

const IN_FLIGHT_KEY = 'builds';
/** Lines of build output quoted in a BuildFailed status. */
const TAIL_LINES = 8;

export class BuildService implements ImageBuilderPort {
  readonly queue: BuildQueue;
  private readonly builder: ImageBuilder;

  constructor(private readonly opts: BuildServiceOptions) {
    const interrupted = (opts.state.data.extra[IN_FLIGHT_KEY] as InFlightBuild[] | undefined) ?? [];
    if (interrupted.length > 0) opts.log.warn({ builds: interrupted }, 'builds were running when berth stopped; each is retried once');
    this.queue = new BuildQueue({
      concurrency: opts.concurrency,
      interrupted,
      persist: async (inFlight) => {
        opts.state.update((d) => void (d.extra[IN_FLIGHT_KEY] = inFlight));
        await opts.state.flush();
      },
    });
    this.builder = new ImageBuilder(opts.runtime, { stateDir: opts.stateDir });
  }

  async build(spec: BuildSpec, signal: AbortSignal): Promise<void> {
    const log = this.opts.log.child({ app: spec.app, revision: spec.revision.slice(0, 12) });
    await this.queue.enqueue(spec.app, spec.revision, async (sig) => {
      let contextDir: string;
      let checkout: string | undefined;
      if ('git' in spec.source) {
        checkout = join(this.opts.stateDir, 'checkouts', `${spec.app}-${spec.revision.slice(0, 12)}`);
        const { url, commit, branch } = spec.source.git;
        contextDir = (await this.opts.git.checkout(url, commit, checkout, sig, { branch })).dir;
      } else {
        contextDir = spec.source.path;
      }
      log.info('build started');
      faultPoint('build:started');
      try {
        const r = await this.builder.build(
          { app: spec.app, instance: this.opts.instance, revision: spec.revision, contextDir, dockerfile: spec.dockerfile, buildArgs: spec.buildArgs },
          sig,
        );
        log.info({ tag: r.tag, ms: r.durationMs }, 'build finished');
      } catch (e) {
        if (!(e instanceof BuildFailedError)) throw e;
        // The status shows why, with the last lines of the output; the whole log is kept.
        const tail = e.logTail.trim().split('\n').slice(-TAIL_LINES).join('\n');
        throw new BerthError('stalled', e.reason, `${e.message}${tail ? `\nlast output:\n${tail}` : ''}\n(full log: berth logs ${spec.app} --build)`, { cause: e });
      } finally {
        if (checkout) await rm(checkout, { recursive: true, force: true }).catch(() => undefined);
      }
      await this.prune(spec.app).catch((e: unknown) => log.warn({ err: e }, 'cannot prune old images'));
    }, { signal });
  }

  /**
   * Keep the newest images of an app (and any a container uses — a sleeping app's included);
   * remove the rest. `keep` 0: the app is gone, remove every image of it nothing uses.
   */
  async prune(app: string, keep = this.opts.keepImages(app)): Promise<void> {
    const labels = ownerLabels(this.opts.instance, app);
    const [images, containers] = await Promise.all([this.opts.runtime.listImages(labels), this.opts.runtime.listContainers(labels)]);
    const used = new Set(containers.flatMap((c) => [c.image, c.imageId]));
    const newestFirst = images.filter((i) => i.labels[LABEL_APP] === app).sort((a, b) => b.created - a.created);
    for (const image of newestFirst.slice(keep)) {
      if (used.has(image.id) || image.tags.some((t) => used.has(t))) continue;
      for (const tag of image.tags) await this.opts.runtime.removeImage(tag);
    }
  }

  /** Apps berth has built images for (from the images' labels). */
  async builtApps(): Promise<string[]> {
    const images = await this.opts.runtime.listImages(ownerLabels(this.opts.instance));
    return [...new Set(images.map((i) => i.labels[LABEL_APP]).filter((a): a is string => a !== undefined))];
  }

  snapshot(): BuildQueueSnapshot {
    return this.queue.snapshot();
  }

  async stop(): Promise<void> {
    await this.queue.stop();
  }
}
