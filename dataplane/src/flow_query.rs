//! Questions the control thread asks a worker about its own flow table (`dsrlb
//! which-target`): is this flow pinned, and to which target? Lock-free queues both
//! ways, answered in the worker's loop, so the table stays the worker's alone.

use crate::flow::{FlowKey, FlowTable, FlowTarget};
use crossbeam::queue::ArrayQueue;

/// Questions a worker holds at once; more wait for the asker's next try.
const QUEUE: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowAsk {
    pub id: u64,
    pub key: FlowKey,
    /// The flow's hash under the worker's current snapshot's seed.
    pub hash: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FlowAnswer {
    pub id: u64,
    /// The target the flow is pinned to, None if the table does not hold it.
    pub pinned: Option<FlowTarget>,
}

#[derive(Debug)]
pub struct FlowQueries {
    asks: ArrayQueue<FlowAsk>,
    answers: ArrayQueue<FlowAnswer>,
}

impl Default for FlowQueries {
    fn default() -> Self {
        FlowQueries {
            asks: ArrayQueue::new(QUEUE),
            answers: ArrayQueue::new(QUEUE),
        }
    }
}

impl FlowQueries {
    /// The control thread's question; false if the worker has too many waiting.
    pub fn ask(&self, ask: FlowAsk) -> bool {
        self.asks.push(ask).is_ok()
    }

    /// An answer, if one came.
    pub fn answer(&self) -> Option<FlowAnswer> {
        self.answers.pop()
    }

    /// The worker's part: answers what is asked (nothing to do, the common case, is
    /// one load). `now_ms` is only read when there is a question.
    #[inline(always)]
    pub fn serve(&self, flows: &mut FlowTable, now_ms: impl FnOnce() -> u64) {
        if self.asks.is_empty() {
            return;
        }
        let now_ms = now_ms();
        while let Some(ask) = self.asks.pop() {
            let pinned = flows.get(&ask.key, ask.hash, now_ms).map(|e| e.target());
            // The asker drains answers before asking again: room is there.
            let _ = self.answers.push(FlowAnswer { id: ask.id, pinned });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::flow::{FlowState, FlowTableConfig};

    #[test]
    fn a_worker_answers_from_its_table_what_it_holds() {
        let mut flows = FlowTable::new(FlowTableConfig {
            capacity: 64,
            ..FlowTableConfig::default()
        });
        let key = FlowKey::new(0x0a63_0001, 40000, 80, 0);
        let target = FlowTarget {
            slot: 1,
            generation: 7,
        };
        flows.insert(&key, 42, target, FlowState::TcpEstablished, 1000);
        let q = FlowQueries::default();
        let mut clock_read = false;
        q.serve(&mut flows, || {
            clock_read = true;
            0
        });
        assert!(!clock_read, "nothing asked: not even the clock");
        assert!(q.ask(FlowAsk {
            id: 1,
            key,
            hash: 42
        }));
        let other = FlowKey::new(0x0a63_0001, 40001, 80, 0);
        assert!(q.ask(FlowAsk {
            id: 2,
            key: other,
            hash: 43
        }));
        q.serve(&mut flows, || 1001);
        assert_eq!(
            q.answer(),
            Some(FlowAnswer {
                id: 1,
                pinned: Some(target)
            })
        );
        assert_eq!(
            q.answer(),
            Some(FlowAnswer {
                id: 2,
                pinned: None
            })
        );
        assert_eq!(q.answer(), None);
        assert!((0..QUEUE as u64).all(|id| q.ask(FlowAsk { id, key, hash: 42 })));
        assert!(
            !q.ask(FlowAsk {
                id: 99,
                key,
                hash: 42
            }),
            "bounded"
        );
    }
}
