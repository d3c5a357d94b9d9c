/**
 * `'uv'`: a libuv poll handle on Node's own event loop, the fastest; only in Node itself.
 * `'tokio'`: the Rust core's tokio `AsyncFd` on the addon's tokio runtime, each wake delivered
 * through a Node-API threadsafe function; everywhere else (Deno, Bun).
 */
export type Engine = 'uv' | 'tokio';
/** The environment variable that forces an engine: `SHM_DOORBELL_ENGINE=uv` or `=tokio`. */
export declare const ENGINE_VARIABLE = "SHM_DOORBELL_ENGINE";
/** The engine that watches this thread's doorbells (see {@link Engine}). */
export declare const engine: Engine;
