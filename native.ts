// The addon, through napi's generated loader. ./platform is evaluated first (imports run in order),
// so that a platform with no binary fails with one clear error instead of the loader's.
import './platform'

export * from './binding'
