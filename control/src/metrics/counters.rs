//! What the metrics endpoint counts of its own work.

use baton_counters::OwnedCounters;

baton_counters::counters! {
    /// Every counter of the metrics endpoint.
    pub enum MetricsCounter {
        /// Scrapes answered: `GET /metrics` requests.
        Scrapes => "metrics_scrapes", connections;
        /// Requests for another path than /metrics (answered 404).
        NotFound => "metrics_not_found", connections;
        /// Requests that are not a valid HTTP/1.x GET, or whose head is too
        /// long, or that closed before their head was whole (answered 400,
        /// 405 or 431 where the connection still stood).
        BadRequests => "metrics_bad_requests", connections;
        /// Connections closed because they took longer than 5 s to send a
        /// request and read the answer.
        Timeouts => "metrics_timeouts", connections;
        /// Connections closed at once because 16 were already open.
        Refused => "metrics_refused", connections;
        /// Connections that failed to read or write (reset by the client).
        IoErrors => "metrics_io_errors", connections;
    }
}

/// The endpoint's counters; the control lcore is their only writer.
pub type MetricsCounters = OwnedCounters<MetricsCounter, { MetricsCounter::COUNT }>;
