/** Types of build-kernels.mjs (plain JavaScript so that it runs without tsx). */
export declare const kernelsDir: string;
/** Every .wat file under worker/model/kernels, sorted, as absolute paths. */
export declare function kernelSources(dir?: string): string[];
/** The .wasm path that belongs to a .wat source. */
export declare function wasmPathOf(watPath: string): string;
/** Assembles one .wat file into validated WebAssembly bytes. */
export declare function assembleWat(watPath: string): Promise<Uint8Array>;
