//! Health checking: probes over the management network and the rise/fall state.

mod prober;
mod state;
mod sys;

pub use prober::{Change, LastProbe, ProbeSource, ProbeTarget, Prober, ScheduleStats};
pub use state::{Failure, Health, HealthTracker, Outcome};
pub use sys::raise_fd_limit;
