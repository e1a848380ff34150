//! Baton's named counters, for every part that `baton stats` shows.
//!
//! Each counter is declared once, with [`counters!`]: its variant, the name
//! `baton stats` shows, its [`Kind`], whether it counts drops, and a doc
//! comment saying what it counts. Everything else (the list in display
//! order, the names, the cells that hold the values, the drop total) comes
//! from that one declaration.
//!
//! Two kinds of cells hold them: [`OwnedCounters`] when one thread does all
//! the writing (a worker: an increment is then a plain load and store) and
//! [`SharedCounters`] when several threads add to the same counter. Either
//! can be read from any thread at any time; [`Values`] is what a read gives.
//!
//! [`RateLimit`] bounds the log lines of what is counted: one line per
//! source an interval, with how many were left out.
#![forbid(unsafe_code)]

mod rate_limit;

pub use rate_limit::RateLimit;

use std::fmt;
use std::marker::PhantomData;
use std::ops::AddAssign;
use std::sync::atomic::{AtomicU64, Ordering};

/// What a counter counts, which says how it may be combined with others.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Frames. Only drops of this kind add up to a node's packet drops.
    Packets,
    /// Bytes, of frames or of messages.
    Bytes,
    /// Connections, or attempts at one: clients' connections and their
    /// handoffs, or the control channel's links to peers.
    Connections,
    /// Control messages: between nodes, or between the control lcore and
    /// the workers.
    Messages,
    /// A current value (flows in the table, peers up), set rather than
    /// added to.
    Gauge,
    /// Time, in microseconds, summed over events another counter counts.
    Micros,
}

/// A set of counters declared with [`counters!`].
pub trait CounterSet: Copy + Eq + 'static {
    /// Every counter of the set, in display order.
    const ALL: &'static [Self];
    /// Its position in [`Self::ALL`].
    fn index(self) -> usize;
    /// The name `baton stats` shows.
    fn name(self) -> &'static str;
    fn kind(self) -> Kind;
    /// What it counts, from its doc comment.
    fn help(self) -> &'static str;
    /// Whether it counts things that were dropped.
    fn is_drop(self) -> bool;
    /// Whether it counts dropped frames: these, and only these, make up the
    /// packet drop total.
    fn is_packet_drop(self) -> bool {
        self.is_drop() && self.kind() == Kind::Packets
    }
}

/// Declares a set of counters: an enum, one variant per counter, with its
/// name, its [`Kind`] (`packets`, `bytes`, `connections`, `messages`, `micros` or
/// `gauge`) and, for a drop counter, `drop`.
///
/// ```
/// baton_counters::counters! {
///     /// What a toy forwarder counts.
///     pub enum Toy {
///         /// Frames received.
///         Rx => "rx", packets;
///         /// Dropped: the TX ring was full.
///         DropTxFull => "drop_tx_full", packets, drop;
///         /// Dropped: a message for a queue that was full.
///         DropQueueFull => "drop_queue_full", messages, drop;
///         /// Frames waiting now.
///         Waiting => "waiting", gauge;
///     }
/// }
/// use baton_counters::{Kind, OwnedCounters};
///
/// assert_eq!(Toy::ALL.len(), Toy::COUNT);
/// assert_eq!(Toy::DropTxFull.name(), "drop_tx_full");
/// assert_eq!(Toy::Waiting.kind(), Kind::Gauge);
/// let c = OwnedCounters::<Toy, { Toy::COUNT }>::new();
/// c.add(Toy::DropTxFull, 2);
/// c.add(Toy::DropQueueFull, 5);
/// assert_eq!(c.drops(), 2, "message drops are not packet drops");
/// ```
#[macro_export]
macro_rules! counters {
    (@kind packets) => { $crate::Kind::Packets };
    (@kind bytes) => { $crate::Kind::Bytes };
    (@kind connections) => { $crate::Kind::Connections };
    (@kind messages) => { $crate::Kind::Messages };
    (@kind gauge) => { $crate::Kind::Gauge };
    (@kind micros) => { $crate::Kind::Micros };
    (@drop) => { false };
    (@drop drop) => { true };
    (
        $(#[doc = $set_doc:literal])*
        $vis:vis enum $set:ident {
            $(
                $(#[doc = $doc:literal])*
                $variant:ident => $name:literal, $kind:ident $(, $drop:ident)?;
            )*
        }
    ) => {
        $(#[doc = $set_doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
        $vis enum $set {
            $( $(#[doc = $doc])* $variant, )*
        }

        impl $set {
            /// Every counter, in display order.
            pub const ALL: &'static [$set] = &[$($set::$variant,)*];
            /// How many counters there are.
            pub const COUNT: usize = Self::ALL.len();

            /// The name `baton stats` shows.
            pub fn name(self) -> &'static str {
                match self { $($set::$variant => $name,)* }
            }

            pub fn kind(self) -> $crate::Kind {
                match self { $($set::$variant => $crate::counters!(@kind $kind),)* }
            }

            /// What it counts: its doc comment, on one line (the help text
            /// of the metrics endpoint).
            pub fn help(self) -> &'static str {
                match self { $($set::$variant => concat!($($doc),*).trim_ascii(),)* }
            }

            /// Whether this counts things that were dropped (frames or
            /// messages: see [`Self::kind`]).
            pub fn is_drop(self) -> bool {
                match self { $($set::$variant => $crate::counters!(@drop $($drop)?),)* }
            }
        }

        impl $crate::CounterSet for $set {
            const ALL: &'static [$set] = $set::ALL;
            #[inline]
            fn index(self) -> usize {
                self as usize
            }
            fn name(self) -> &'static str {
                $set::name(self)
            }
            fn kind(self) -> $crate::Kind {
                $set::kind(self)
            }
            fn help(self) -> &'static str {
                $set::help(self)
            }
            fn is_drop(self) -> bool {
                $set::is_drop(self)
            }
        }
    };
}

/// The cells of a counter set. `N` must be the set's `COUNT` (checked when
/// the cells are made).
#[repr(align(64))]
struct Cells<C, const N: usize> {
    values: [AtomicU64; N],
    _set: PhantomData<C>,
}

impl<C: CounterSet, const N: usize> Cells<C, N> {
    fn new() -> Self {
        const { assert!(N == C::ALL.len(), "N must be the counter set's COUNT") };
        Cells {
            values: std::array::from_fn(|_| AtomicU64::new(0)),
            _set: PhantomData,
        }
    }

    #[inline]
    fn cell(&self, counter: C) -> &AtomicU64 {
        &self.values[counter.index()]
    }

    fn read(&self) -> Values<C, N> {
        Values {
            values: std::array::from_fn(|i| self.values[i].load(Ordering::Relaxed)),
            _set: PhantomData,
        }
    }
}

/// Counters that one thread writes, their owner (a worker lcore), and any
/// thread reads. An increment is a relaxed load and store, with no locked
/// instruction: a second writer would lose increments.
pub struct OwnedCounters<C, const N: usize> {
    cells: Cells<C, N>,
}

impl<C: CounterSet, const N: usize> OwnedCounters<C, N> {
    pub fn new() -> Self {
        OwnedCounters {
            cells: Cells::new(),
        }
    }

    /// Adds `n` to `counter`. Call only from the owning thread.
    #[inline]
    pub fn add(&self, counter: C, n: u64) {
        debug_assert!(counter.kind() != Kind::Gauge, "{} is set", counter.name());
        let cell = self.cells.cell(counter);
        cell.store(
            cell.load(Ordering::Relaxed).wrapping_add(n),
            Ordering::Relaxed,
        );
    }

    /// Sets a gauge. Call only from the owning thread.
    #[inline]
    pub fn set(&self, counter: C, value: u64) {
        debug_assert!(
            counter.kind() == Kind::Gauge,
            "{} is added to",
            counter.name()
        );
        self.cells.cell(counter).store(value, Ordering::Relaxed);
    }

    pub fn get(&self, counter: C) -> u64 {
        self.cells.cell(counter).load(Ordering::Relaxed)
    }

    /// Every value, as of now.
    pub fn read(&self) -> Values<C, N> {
        self.cells.read()
    }

    /// Every counter by name, in display order.
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        self.read().named().collect()
    }

    /// All frames dropped, whatever the reason (not dropped messages).
    pub fn drops(&self) -> u64 {
        self.read().drops()
    }
}

impl<C: CounterSet, const N: usize> Default for OwnedCounters<C, N> {
    fn default() -> Self {
        Self::new()
    }
}

/// Counters that any thread may write and read (an increment is an atomic
/// add): for the control plane's threads, which share some counters.
pub struct SharedCounters<C, const N: usize> {
    cells: Cells<C, N>,
}

impl<C: CounterSet, const N: usize> SharedCounters<C, N> {
    pub fn new() -> Self {
        SharedCounters {
            cells: Cells::new(),
        }
    }

    /// Adds `n` to `counter`.
    #[inline]
    pub fn add(&self, counter: C, n: u64) {
        debug_assert!(counter.kind() != Kind::Gauge, "{} is set", counter.name());
        self.cells.cell(counter).fetch_add(n, Ordering::Relaxed);
    }

    /// Sets a gauge.
    #[inline]
    pub fn set(&self, counter: C, value: u64) {
        debug_assert!(
            counter.kind() == Kind::Gauge,
            "{} is added to",
            counter.name()
        );
        self.cells.cell(counter).store(value, Ordering::Relaxed);
    }

    pub fn get(&self, counter: C) -> u64 {
        self.cells.cell(counter).load(Ordering::Relaxed)
    }

    /// Every value, as of now.
    pub fn read(&self) -> Values<C, N> {
        self.cells.read()
    }
}

impl<C: CounterSet, const N: usize> Default for SharedCounters<C, N> {
    fn default() -> Self {
        Self::new()
    }
}

/// A histogram of durations with fixed bucket bounds, written by one
/// thread (like [`OwnedCounters`]) and read by any. Bounded: one cell per
/// bucket, whatever is recorded.
pub struct OwnedHistogram {
    /// Upper bounds of the buckets, in µs, ascending; one more bucket
    /// takes everything above the last.
    bounds_micros: &'static [u64],
    counts: Box<[AtomicU64]>,
    sum_micros: AtomicU64,
}

/// What an [`OwnedHistogram`] holds, read at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HistogramValues {
    /// Upper bounds of the buckets, in µs (the last bucket, above them all,
    /// has none).
    pub bounds_micros: Vec<u64>,
    /// Events per bucket (not cumulative): one more than the bounds.
    pub counts: Vec<u64>,
    /// The recorded durations, summed, in µs.
    pub sum_micros: u64,
}

impl HistogramValues {
    /// Events recorded.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }
}

impl OwnedHistogram {
    pub fn new(bounds_micros: &'static [u64]) -> Self {
        assert!(
            bounds_micros.windows(2).all(|w| w[0] < w[1]),
            "bucket bounds must ascend"
        );
        OwnedHistogram {
            bounds_micros,
            counts: (0..=bounds_micros.len())
                .map(|_| AtomicU64::new(0))
                .collect(),
            sum_micros: AtomicU64::new(0),
        }
    }

    /// Records one event that took `micros`. Call only from the owning
    /// thread.
    #[inline]
    pub fn record(&self, micros: u64) {
        let bucket = self.bounds_micros.partition_point(|&b| b < micros);
        let add = |cell: &AtomicU64, n: u64| {
            cell.store(
                cell.load(Ordering::Relaxed).wrapping_add(n),
                Ordering::Relaxed,
            )
        };
        add(&self.counts[bucket], 1);
        add(&self.sum_micros, micros);
    }

    pub fn read(&self) -> HistogramValues {
        HistogramValues {
            bounds_micros: self.bounds_micros.to_vec(),
            counts: self
                .counts
                .iter()
                .map(|c| c.load(Ordering::Relaxed))
                .collect(),
            sum_micros: self.sum_micros.load(Ordering::Relaxed),
        }
    }
}

/// The values of a counter set, read at one moment; plain numbers, to
/// report or to add up.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Values<C, const N: usize> {
    values: [u64; N],
    _set: PhantomData<C>,
}

impl<C: CounterSet, const N: usize> Values<C, N> {
    /// All zero.
    pub fn zero() -> Self {
        const { assert!(N == C::ALL.len(), "N must be the counter set's COUNT") };
        Values {
            values: [0; N],
            _set: PhantomData,
        }
    }

    pub fn get(&self, counter: C) -> u64 {
        self.values[counter.index()]
    }

    /// Adds `n` to one value (a gauge too: the parts of a whole add up).
    pub fn add(&mut self, counter: C, n: u64) {
        let value = &mut self.values[counter.index()];
        *value = value.wrapping_add(n);
    }

    /// Every counter by name, in display order.
    pub fn named(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        C::ALL.iter().map(|&c| (c.name(), self.get(c)))
    }

    /// All frames dropped, whatever the reason (not dropped messages).
    pub fn drops(&self) -> u64 {
        C::ALL
            .iter()
            .filter(|c| c.is_packet_drop())
            .map(|&c| self.get(c))
            .sum()
    }
}

impl<C: CounterSet, const N: usize> Default for Values<C, N> {
    fn default() -> Self {
        Self::zero()
    }
}

/// Adds every value: the totals of several parts (gauges included, so the
/// peers up of each link add up to the peers up of the node).
impl<C: CounterSet, const N: usize> AddAssign for Values<C, N> {
    fn add_assign(&mut self, other: Self) {
        for (sum, v) in self.values.iter_mut().zip(other.values) {
            *sum = sum.wrapping_add(v);
        }
    }
}

impl<C: CounterSet, const N: usize> fmt::Debug for Values<C, N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map().entries(self.named()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    counters! {
        /// A set to test the macro with.
        enum Test {
            /// Frames in.
            Rx => "rx", packets;
            /// Bytes in.
            RxBytes => "rx_bytes", bytes;
            /// Dropped: no room.
            DropFull => "drop_full", packets, drop;
            /// Dropped: a message nobody expected.
            DropUnknown => "drop_unknown", messages, drop;
            /// Handoffs refused.
            Refused => "refused", connections;
            /// In the table now.
            Active => "active", gauge;
        }
    }

    const N: usize = Test::COUNT;

    #[test]
    fn the_declaration_gives_order_names_kinds_and_drops() {
        assert_eq!(
            Test::ALL,
            &[
                Test::Rx,
                Test::RxBytes,
                Test::DropFull,
                Test::DropUnknown,
                Test::Refused,
                Test::Active
            ]
        );
        for (i, &c) in Test::ALL.iter().enumerate() {
            assert_eq!(CounterSet::index(c), i);
            assert_eq!(CounterSet::name(c), c.name());
        }
        assert_eq!(Test::RxBytes.kind(), Kind::Bytes);
        assert_eq!(Test::Refused.kind(), Kind::Connections);
        assert_eq!(Test::Active.kind(), Kind::Gauge);
        assert!(Test::DropFull.is_drop() && Test::DropFull.is_packet_drop());
        assert!(Test::DropUnknown.is_drop() && !Test::DropUnknown.is_packet_drop());
        assert!(!Test::Rx.is_drop());
    }

    #[test]
    fn owned_counters_add_set_and_sum_only_packet_drops() {
        let c = OwnedCounters::<Test, N>::default();
        c.add(Test::Rx, 3);
        c.add(Test::Rx, 4);
        c.add(Test::DropFull, 2);
        c.add(Test::DropUnknown, 9);
        c.set(Test::Active, 5);
        c.set(Test::Active, 4);
        assert_eq!(c.get(Test::Rx), 7);
        assert_eq!(c.get(Test::Active), 4);
        assert_eq!(c.drops(), 2);
        let snap = c.snapshot();
        assert_eq!(snap[0], ("rx", 7));
        assert!(snap.contains(&("drop_unknown", 9)));
        assert_eq!(snap.len(), N);
    }

    #[test]
    fn shared_counters_take_adds_from_many_threads() {
        let c = SharedCounters::<Test, N>::default();
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..1000 {
                        c.add(Test::Refused, 1);
                    }
                });
            }
        });
        assert_eq!(c.get(Test::Refused), 4000);
        c.set(Test::Active, 2);
        assert_eq!(c.read().get(Test::Active), 2);
    }

    #[test]
    fn help_is_the_doc_comment_on_one_line() {
        assert_eq!(Test::Rx.help(), "Frames in.");
        assert_eq!(CounterSet::help(Test::DropFull), "Dropped: no room.");
    }

    counters! {
        /// Docs over several lines.
        enum Long {
            /// The first line
            /// and the second.
            Two => "two", packets;
        }
    }

    #[test]
    fn help_joins_doc_lines() {
        assert_eq!(Long::Two.help(), "The first line and the second.");
        assert_eq!(Long::COUNT, 1);
    }

    #[test]
    fn a_histogram_puts_each_duration_in_the_first_bucket_that_holds_it() {
        let h = OwnedHistogram::new(&[100, 1000]);
        for micros in [0, 100, 101, 1000, 5000, 7000] {
            h.record(micros);
        }
        let v = h.read();
        assert_eq!(v.bounds_micros, [100, 1000]);
        assert_eq!(v.counts, [2, 2, 2]);
        assert_eq!(v.count(), 6);
        assert_eq!(v.sum_micros, 13201);
    }

    #[test]
    fn values_add_up_part_by_part() {
        let a = SharedCounters::<Test, N>::new();
        let b = SharedCounters::<Test, N>::new();
        a.add(Test::Rx, 1);
        a.set(Test::Active, 1);
        b.add(Test::Rx, 2);
        b.add(Test::DropFull, 3);
        b.set(Test::Active, 1);
        let mut total = Values::zero();
        total += a.read();
        total += b.read();
        total.add(Test::DropFull, 1);
        assert_eq!(total.get(Test::Rx), 3);
        assert_eq!(total.get(Test::Active), 2);
        assert_eq!(total.drops(), 4);
        assert_eq!(
            format!("{total:?}"),
            r#"{"rx": 3, "rx_bytes": 0, "drop_full": 4, "drop_unknown": 0, "refused": 0, "active": 2}"#
        );
    }
}
