/** Types of build.mjs (plain JavaScript so that bin/start.mjs can run it without tsx). */
export declare const preloadOutfile: string;
/** Bundles the preload into one CommonJS file; resolves with its path. */
export declare function buildPreload(outfile?: string): Promise<string>;
