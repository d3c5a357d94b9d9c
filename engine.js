"use strict";
var __createBinding = (this && this.__createBinding) || (Object.create ? (function(o, m, k, k2) {
    if (k2 === undefined) k2 = k;
    var desc = Object.getOwnPropertyDescriptor(m, k);
    if (!desc || ("get" in desc ? !m.__esModule : desc.writable || desc.configurable)) {
      desc = { enumerable: true, get: function() { return m[k]; } };
    }
    Object.defineProperty(o, k2, desc);
}) : (function(o, m, k, k2) {
    if (k2 === undefined) k2 = k;
    o[k2] = m[k];
}));
var __setModuleDefault = (this && this.__setModuleDefault) || (Object.create ? (function(o, v) {
    Object.defineProperty(o, "default", { enumerable: true, value: v });
}) : function(o, v) {
    o["default"] = v;
});
var __importStar = (this && this.__importStar) || (function () {
    var ownKeys = function(o) {
        ownKeys = Object.getOwnPropertyNames || function (o) {
            var ar = [];
            for (var k in o) if (Object.prototype.hasOwnProperty.call(o, k)) ar[ar.length] = k;
            return ar;
        };
        return ownKeys(o);
    };
    return function (mod) {
        if (mod && mod.__esModule) return mod;
        var result = {};
        if (mod != null) for (var k = ownKeys(mod), i = 0; i < k.length; i++) if (k[i] !== "default") __createBinding(result, mod, k[i]);
        __setModuleDefault(result, mod);
        return result;
    };
})();
Object.defineProperty(exports, "__esModule", { value: true });
exports.engine = exports.ENGINE_VARIABLE = void 0;
// The wait engine: what watches a doorbell's fd while a wait is pending. Chosen once, as the module
// loads, for every doorbell of this thread.
const binding = __importStar(require("./native"));
const errors_1 = require("./errors");
/** The environment variable that forces an engine: `SHM_DOORBELL_ENGINE=uv` or `=tokio`. */
exports.ENGINE_VARIABLE = 'SHM_DOORBELL_ENGINE';
/** The runtime's name when it is not Node itself but loads Node-API addons (Bun, Deno). */
function otherRuntime() {
    if (process.versions.bun)
        return `Bun ${process.versions.bun}`;
    if (process.versions.deno || 'Deno' in globalThis)
        return `Deno ${process.versions.deno ?? ''}`.trimEnd();
    return undefined;
}
function forcedEngine() {
    try {
        return process.env[exports.ENGINE_VARIABLE] || undefined;
    }
    catch {
        // Deno without --allow-env: nothing is forced.
        return undefined;
    }
}
function chooseEngine() {
    const forced = forcedEngine();
    const other = otherRuntime();
    if (forced !== undefined && forced !== 'uv' && forced !== 'tokio') {
        throw (0, errors_1.codedError)(new Error(`${exports.ENGINE_VARIABLE}=${forced} names no engine: use 'uv' or 'tokio', or leave it unset`), 'ERR_DOORBELL_ENGINE_UNKNOWN');
    }
    // libuv is not even looked up outside Node: Bun exports libuv's names as stubs that abort.
    if (forced === 'uv' && other) {
        throw (0, errors_1.codedError)(new Error(`${exports.ENGINE_VARIABLE}=uv: the uv engine runs on Node.js's own libuv, and this is ${other}: use 'tokio', or leave it unset`), 'ERR_DOORBELL_ENGINE_UNAVAILABLE');
    }
    const engine = forced ?? (other ? 'tokio' : 'uv');
    try {
        binding.useEngine(engine);
    }
    catch (err) {
        // A Node embedder that does not export libuv still gets a working engine, unless uv was forced.
        if (forced || err.code !== 'ERR_DOORBELL_ENGINE_UNAVAILABLE')
            throw err;
        binding.useEngine('tokio');
        return 'tokio';
    }
    return engine;
}
/** The engine that watches this thread's doorbells (see {@link Engine}). */
exports.engine = chooseEngine();
