// The public API: every export of the package, by concern. The modules are in lib/.
export { AbortError } from './lib/errors'
export { Channel, ChannelHandle, type ChannelOptions, type ChannelWaitOptions } from './lib/channel'
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
} from './lib/doorbell'
export { type Engine, engine } from './lib/engine'
export { type ForkChannelOptions, type ForkedChildFor, fork } from './lib/fork'
export { SharedRegion } from './lib/region'
export {
  type AcceptedChannel,
  type AcceptedDoorbell,
  type ChannelConnectOptions,
  ChannelListener,
  type ChannelListenOptions,
  type ConnectOptions,
  type ConnectedDoorbell,
  DoorbellListener,
  type DoorbellListenOptions,
  HELLO_TIMEOUT_MS,
  type ListenOptions,
  type Peer,
} from './lib/rendezvous'
export {
  type ChildProcessFor,
  type SpawnChannelOptions,
  type SpawnGuestOptions,
  type SpawnedChannel,
  type SpawnedGuest,
  spawn,
  spawnChannel,
} from './lib/spawn'
