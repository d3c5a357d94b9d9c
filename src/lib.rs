//! shm-doorbell: cross-process wakeup over an AF_UNIX socketpair, for Node.js.
//!
//! [`doorbell`] is the Rust core, usable on its own from tokio code; `binding` is the napi
//! surface that `index.ts` wraps.

pub mod binding;
pub mod channel;
pub mod doorbell;
pub mod region;
pub mod rendezvous;
mod uv;
