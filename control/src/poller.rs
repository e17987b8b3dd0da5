//! An epoll set whose events carry a key of the caller's (a prober slot, a
//! connection): the health prober and the control threads' servers wait on it.

use rustix::event::epoll::{self, CreateFlags, EventData, EventFlags};
use rustix::event::Timespec;
use std::os::fd::{AsFd, OwnedFd};
use std::time::Duration;

/// An errno, as the callers report it.
pub type RawErrno = i32;

/// Events at most one wait returns; the rest come at the next.
const EVENTS: usize = 256;

pub struct Poller {
    epoll: OwnedFd,
}

/// What a descriptor is waited on for.
#[derive(Debug, Clone, Copy)]
pub enum Interest {
    /// Room to write (a connect completing, a response going out).
    Writable,
    /// Something to read (a request, a response, a child's exit on its pidfd).
    Readable,
}

impl Interest {
    fn flags(self) -> EventFlags {
        match self {
            Interest::Writable => EventFlags::OUT,
            Interest::Readable => EventFlags::IN,
        }
    }
}

impl Poller {
    pub fn new() -> std::io::Result<Poller> {
        Ok(Poller {
            epoll: epoll::create(CreateFlags::CLOEXEC)?,
        })
    }

    /// Adds `fd` under `key`. Closing the fd takes it out of the set again.
    pub fn watch(&self, fd: impl AsFd, key: usize, interest: Interest) -> Result<(), RawErrno> {
        let data = EventData::new_u64(key as u64);
        epoll::add(&self.epoll, fd, data, interest.flags()).map_err(|e| e.raw_os_error())
    }

    /// Changes what `fd`, already in the set under `key`, is waited on for.
    pub fn rewatch(&self, fd: impl AsFd, key: usize, interest: Interest) -> Result<(), RawErrno> {
        let data = EventData::new_u64(key as u64);
        epoll::modify(&self.epoll, fd, data, interest.flags()).map_err(|e| e.raw_os_error())
    }

    /// Waits up to `timeout` for events; the keys they are for. An interrupted wait
    /// returns none: the callers' deadlines still hold.
    pub fn wait(&self, timeout: Duration) -> Vec<usize> {
        let timeout = Timespec {
            tv_sec: timeout.as_secs().try_into().unwrap_or(i64::MAX),
            tv_nsec: timeout.subsec_nanos().into(),
        };
        // Made for each wait: an event holds a pointer's room and is not Send, and
        // the set lives on threads of its own.
        let mut events = Vec::with_capacity(EVENTS);
        let buffer = rustix::buffer::spare_capacity(&mut events);
        let _ = epoll::wait(&self.epoll, buffer, Some(&timeout));
        events.iter().map(|e| e.data.u64() as usize).collect()
    }
}
