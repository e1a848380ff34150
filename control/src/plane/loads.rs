//! The node's load: what its workers last reported, added up.

use baton_handoff::Load;

/// Each worker's last load report.
#[derive(Debug)]
pub(crate) struct WorkerLoads {
    loads: Vec<Load>,
}

impl WorkerLoads {
    /// Nothing reported yet by any of `workers`.
    pub(crate) fn new(workers: usize) -> WorkerLoads {
        WorkerLoads {
            loads: vec![Load::default(); workers],
        }
    }

    /// A worker's report replaces its last one. A worker the node does not
    /// have is ignored.
    pub(crate) fn report(&mut self, worker: usize, load: Load) {
        if let Some(slot) = self.loads.get_mut(worker) {
            *slot = load;
        }
    }

    /// The node's load: the sum of its workers'.
    pub(crate) fn node(&self) -> Load {
        self.loads.iter().fold(Load::default(), |sum, l| Load {
            active_connections: sum.active_connections.saturating_add(l.active_connections),
            pending_handoffs: sum.pending_handoffs.saturating_add(l.pending_handoffs),
            handed_in: sum.handed_in.saturating_add(l.handed_in),
            draining: sum.draining || l.draining,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(active_connections: u32, pending_handoffs: u32, handed_in: u32) -> Load {
        Load {
            active_connections,
            pending_handoffs,
            handed_in,
            draining: false,
        }
    }

    #[test]
    fn the_node_load_is_the_sum_of_each_workers_last_report() {
        let mut loads = WorkerLoads::new(3);
        assert_eq!(loads.node(), Load::default());
        loads.report(0, load(10, 1, 2));
        loads.report(2, load(5, 0, 1));
        assert_eq!(loads.node(), load(15, 1, 3));
        loads.report(0, load(4, 0, 0));
        assert_eq!(loads.node(), load(9, 0, 1), "a report replaces the last");
    }

    #[test]
    fn a_report_from_no_such_worker_is_ignored() {
        let mut loads = WorkerLoads::new(1);
        loads.report(1, load(7, 7, 7));
        assert_eq!(loads.node(), Load::default());
    }

    #[test]
    fn sums_saturate() {
        let mut loads = WorkerLoads::new(2);
        loads.report(0, load(u32::MAX, 0, 0));
        loads.report(1, load(1, 0, 0));
        assert_eq!(loads.node().active_connections, u32::MAX);
    }
}
