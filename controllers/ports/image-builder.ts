// Builds as the controllers see them: one call that resolves when the image tagged `image`
// exists. The implementation queues it in the build slot (one at a time by default), checks
// the source out and streams it to Docker. A failing step rejects with a stalled BerthError
// (BuildFailed, DockerfileNotFound, BuildTimeout…) whose message carries the log tail.
export interface BuildSpec {
  app: string;
  /** Git commit, or the context hash of a path build. */
  revision: string;
  /** The tag the build produces (berth/<app>:<revision12>). */
  image: string;
  source: { git: { url: string; branch: string; commit: string } } | { path: string };
  dockerfile: string;
  buildArgs: Record<string, string>;
}

export interface ImageBuilderPort {
  build(spec: BuildSpec, signal: AbortSignal): Promise<void>;
}
