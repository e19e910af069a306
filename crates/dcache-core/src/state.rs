//! The settings and disk a cache runs with ([`State`]), and each thread's snapshot of them.

use std::any::Any;
use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError};

use dcache_disk::DiskFormat;

use crate::cache::Cache;
use crate::settings::Settings;

/// The settings and disk a cache runs with; replaced whole by `reset`.
#[derive(Debug)]
pub(crate) struct State<D> {
    pub(crate) settings: Settings,
    pub(crate) disk: D,
}

/// A thread's handle on a [`State`]: cloning it touches only this thread's memory.
// The `Rc` is the point: cloning an `Arc` shared by all threads writes its reference count,
// a cache line every core then fights over; this thread's `Rc` around it is written by no one
// else.
#[allow(clippy::redundant_allocation)]
pub(crate) struct StateRef<D>(Rc<Arc<State<D>>>);

impl<D> std::ops::Deref for StateRef<D> {
    type Target = State<D>;

    fn deref(&self) -> &State<D> {
        &self.0
    }
}

/// Snapshots a thread keeps, at most (the oldest goes first).
const SNAPSHOTS_KEPT: usize = 64;

thread_local! {
    /// This thread's snapshots of cache states (`Arc<State<D>>` of any `D`), by generation.
    static SNAPSHOTS: RefCell<Vec<(u64, Rc<dyn Any>)>> = const { RefCell::new(Vec::new()) };
}

/// A generation no other state of any cache in this process has had.
pub(crate) fn next_state_generation() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl<D: DiskFormat> Cache<D> {
    /// This thread's snapshot of the settings and disk in effect.
    ///
    /// Every operation starts here, so it must not write memory other threads use: a thread
    /// keeps the snapshots it has seen, each under its generation (unique in the process), and
    /// checks the current generation with a plain atomic load. Only after a
    /// [`reset`](Self::reset) does it take the lock again.
    pub(crate) fn state(&self) -> StateRef<D> {
        let generation = self.inner.state_generation.load(Ordering::Acquire);
        let cached = SNAPSHOTS
            .try_with(|s| {
                s.try_borrow().ok().and_then(|s| {
                    s.iter()
                        .rev()
                        .find(|(g, _)| *g == generation)
                        .map(|(_, snapshot)| Rc::clone(snapshot))
                })
            })
            .ok()
            .flatten()
            .and_then(|snapshot| snapshot.downcast::<Arc<State<D>>>().ok());
        if let Some(state) = cached {
            return StateRef(state);
        }
        let (generation, state) = {
            let guard = self
                .inner
                .state
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            (guard.0, Rc::new(Arc::clone(&guard.1)))
        };
        SNAPSHOTS
            .try_with(|s| {
                if let Ok(mut s) = s.try_borrow_mut() {
                    if s.len() >= SNAPSHOTS_KEPT {
                        s.remove(0);
                    }
                    s.push((generation, Rc::clone(&state) as Rc<dyn Any>));
                }
            })
            // A thread whose thread-locals are being destroyed uses the snapshot once.
            .unwrap_or(());
        StateRef(state)
    }

    /// Replaces the settings and disk in effect (after `reset`, `reload_settings`).
    pub(crate) fn replace_state(&self, settings: Settings, disk: D) {
        let mut guard = self
            .inner
            .state
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let generation = next_state_generation();
        *guard = (generation, Arc::new(State { settings, disk }));
        self.inner
            .state_generation
            .store(generation, Ordering::Release);
    }
}
