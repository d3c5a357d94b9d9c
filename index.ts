// The public API: every export of the package, by concern.
export { AbortError } from './errors'
export {
  ARG_NAME,
  Doorbell,
  DoorbellHandle,
  type SignalResult,
  type WaitOptions,
  clearCloexec,
  closePeerFd,
  setNonblocking,
  validateFd,
} from './doorbell'
export { type Engine, engine } from './engine'
export { type ChildProcessFor, type SpawnedGuest, spawn } from './spawn'
