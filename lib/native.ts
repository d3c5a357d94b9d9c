// The addon, through napi's generated loader. ./platform is evaluated first (imports run in order),
// so that a platform with no binary fails with one clear error instead of the loader's.
import './platform'
import * as binding from './binding'

export * from './binding'

/** The per-ring functions that src/binding/doorbell.rs exports by hand, so napi-rs does not declare them. */
interface PerRingFunctions {
  /** Sends one ring from the doorbell on `fd`: a `SIGNAL_*` result. */
  signal(fd: number): number
  /** Starts a wait on the doorbell on `fd`: a `WAKE_*` status, `WAKE_EMPTY` once armed, or a negated errno. */
  arm(fd: number): number
}

export const { signal, arm } = binding as unknown as PerRingFunctions
