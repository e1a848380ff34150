//! Where a live connection's writing or reading half waits, shared by the
//! channel's own thread and any other that writes or reads at once.

use std::sync::{Mutex, PoisonError, TryLockError};

/// One half of the peer's connection while one is up (None otherwise).
pub struct Slot<T>(Mutex<Option<T>>);

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Slot(Mutex::new(None))
    }
}

impl<T> Slot<T> {
    /// `f` on the half, waiting for the lock: the channel's own threads.
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_mut()
            .map(f)
    }

    /// `f` on the half, unless another thread holds it: the threads that
    /// must not wait.
    pub fn try_with<R>(&self, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        let mut guard = match self.0.try_lock() {
            Ok(g) => g,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return None,
        };
        guard.as_mut().map(f)
    }

    /// A new connection's half, or none (it is over).
    pub fn set(&self, half: Option<T>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = half;
    }

    /// The half, now that its connection is over.
    pub fn take(&self) -> Option<T> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }
}
