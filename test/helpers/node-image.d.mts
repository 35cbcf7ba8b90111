// Types of node-image.mjs (plain ESM so the benchmarks can use it too).
export declare const NODE_APP_REPO: string;
/** The port the node app listens on. */
export declare const NODE_APP_PORT: number;
/** Absolute paths of the shared libraries and the loader `ldd` names for `binary`. */
export declare function sharedLibraries(binary: string): Promise<string[]>;
/** The tag for `version` (what GET / names): `…:<hash>` for v1, `…:<hash>-<version>` otherwise. */
export declare function nodeAppTag(version?: string): Promise<string>;
/** Builds (once per process; an existing tag is reused) and returns the tag of the node app image. */
export declare function nodeAppImage(version?: string): Promise<string>;
