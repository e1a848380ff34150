//! Baton's control plane, run on the control lcore.
#![forbid(unsafe_code)]
