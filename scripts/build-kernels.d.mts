/** Types of build-kernels.mjs (plain JavaScript so that it runs without tsx). */
export declare const kernelsDir: string;
/** Every .wat file under worker/model/kernels, sorted, as absolute paths. */
export declare function kernelSources(dir?: string): string[];
/** The .wasm path that belongs to a .wat source (its shared-memory build's with `shared`). */
export declare function wasmPathOf(watPath: string, shared?: boolean): string;
/** Every binary to build: each source's, and its shared-memory twin's where the source asks for one. */
export declare function kernelBuilds(dir?: string): { source: string; shared: boolean; wasmPath: string }[];
/** Assembles one .wat file into validated WebAssembly bytes (importing a shared memory with `shared`). */
export declare function assembleWat(watPath: string, shared?: boolean): Promise<Uint8Array>;
