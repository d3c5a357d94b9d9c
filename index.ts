// The public API: every export of the package, by concern.
export { AbortError } from './errors'
export { Channel, ChannelHandle, type ChannelOptions, type ChannelWaitOptions } from './channel'
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
export { SharedRegion } from './region'
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
} from './rendezvous'
export {
  type ChildProcessFor,
  type SpawnChannelOptions,
  type SpawnGuestOptions,
  type SpawnedChannel,
  type SpawnedGuest,
  spawn,
  spawnChannel,
} from './spawn'
