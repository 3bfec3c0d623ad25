//! The registry's tests: interest, detaching, dispatch, and lingering.

use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;

use super::*;

impl SameObject for u32 {
    fn is_same(&self, other: &Self) -> bool {
        self == other
    }
}

/// A registry, its poller, and a connected socket pair to register (`fd`).
struct Fixture {
    poller: Poller,
    registry: IoRegistry<&'static str, u32>,
    detached: Detached<&'static str, u32>,
    fd: RawFd,
    _pair: (UnixStream, UnixStream),
}

fn fixture() -> Fixture {
    let pair = UnixStream::pair().unwrap();
    Fixture {
        poller: Poller::new().unwrap(),
        registry: IoRegistry::default(),
        detached: Detached::default(),
        fd: pair.0.as_raw_fd(),
        _pair: pair,
    }
}

impl Fixture {
    fn set(&mut self, fd: RawFd, d: Direction, c: &'static str, f: Option<u32>) -> io::Result<()> {
        self.registry
            .set(&self.poller, fd, d, c, f, &mut self.detached)
    }

    fn clear(&mut self, d: Direction) -> bool {
        self.registry
            .clear(&self.poller, self.fd, d, &mut self.detached)
            .unwrap()
    }

    fn detached(&self) -> Vec<&'static str> {
        self.detached.callbacks().copied().collect()
    }

    fn fired(&mut self, event: Event) -> Vec<&'static str> {
        let mut seen = Vec::new();
        self.registry
            .dispatch(&self.poller, event, &mut self.detached, |_, c| {
                seen.push(*c);
                *c != "cancelled"
            });
        seen
    }
}

#[test]
fn interest_follows_reader_and_writer() {
    let mut t = fixture();
    let fd = t.fd;
    t.set(fd, Direction::Read, "r", Some(7)).unwrap();
    t.set(fd, Direction::Write, "w", None).unwrap();
    assert!(t.registry.has_user_fds() && !t.registry.is_empty());
    assert_eq!(t.registry.fd_of(|f| *f == 7), Some(fd));
    let all: Vec<_> = t.registry.iter().collect();
    assert_eq!(all, vec![(fd, Some(&7), Some(&"r"), Some(&"w"))]);
    assert!(t.clear(Direction::Read));
    assert!(!t.clear(Direction::Read));
    assert!(t.clear(Direction::Write));
    assert!(t.registry.is_empty() && !t.registry.has_user_fds());
    assert_eq!(t.detached(), ["r", "w"]);
    assert_eq!(t.detached.fileobjs, vec![7]);
}

#[test]
fn a_replaced_callback_is_detached() {
    let mut t = fixture();
    for callback in ["first", "second"] {
        t.set(t.fd, Direction::Read, callback, None).unwrap();
    }
    assert_eq!(t.detached(), ["first"]);
}

#[test]
fn a_failed_registration_keeps_nothing() {
    let mut t = fixture();
    // epoll refuses a file it cannot poll. (A closed fd's number, which the other tests'
    // threads may reuse meanwhile, made this test fail now and then.)
    let unpollable = std::fs::File::open("/dev/null").unwrap();
    assert!(t
        .set(unpollable.as_raw_fd(), Direction::Read, "r", Some(1))
        .is_err());
    assert!(t.registry.is_empty());
    assert_eq!(t.detached(), ["r"]);
    assert_eq!(t.detached.fileobjs, vec![1]);
}

#[test]
fn internal_fds_are_not_the_users() {
    let mut t = fixture();
    t.set(t.fd, Direction::Read, "r", None).unwrap();
    t.registry.set_internal(t.fd, true);
    assert!(!t.registry.is_empty() && !t.registry.has_user_fds());
    t.registry.set_internal(t.fd, false);
    assert!(t.registry.has_user_fds());
}

#[test]
fn dispatch_clears_a_callback_that_no_longer_stands() {
    let mut t = fixture();
    t.set(t.fd, Direction::Write, "cancelled", None).unwrap();
    let event = Event {
        token: token(t.fd),
        readable: true,
        writable: true,
    };
    assert_eq!(t.fired(event), ["cancelled"]);
    assert!(t.registry.is_empty());
    assert!(t.fired(event).is_empty());
}

impl Fixture {
    fn release(&mut self, d: Direction) -> bool {
        self.registry
            .release(&self.poller, self.fd, d, &mut self.detached)
            .unwrap()
    }

    /// Whether epoll still watches `fd`: adding it again fails only if it does.
    fn in_epoll(&self) -> bool {
        let added = self.poller.register(self.fd, Interest::READABLE, 0);
        if added.is_ok() {
            self.poller.deregister(self.fd).unwrap();
        }
        added.is_err()
    }

    fn settle(&mut self, blocking: bool) {
        self.registry
            .settle(&self.poller, blocking, &mut self.detached);
    }
}

#[test]
fn a_released_fd_lingers_unseen_and_its_object_takes_it_back() {
    let mut t = fixture();
    t.set(t.fd, Direction::Read, "first", Some(7)).unwrap();
    assert!(t.release(Direction::Read));
    assert!(!t.release(Direction::Read));
    assert!(t.registry.is_empty() && !t.registry.has_user_fds());
    assert_eq!(t.registry.fd_of(|f| *f == 7), None);
    assert_eq!(t.registry.iter().count(), 0);
    assert!(t.in_epoll());
    assert_eq!(t.registry.lingering_fileobjs().collect::<Vec<_>>(), [&7]);
    t.set(t.fd, Direction::Read, "second", Some(7)).unwrap();
    assert!(t.in_epoll() && t.registry.has_user_fds());
    assert_eq!(t.registry.lingering_fileobjs().count(), 0);
    assert_eq!(t.registry.fd_of(|f| *f == 7), Some(t.fd));
    assert_eq!(t.detached(), ["first"]);
    // Taken back for writing instead, the interest changes.
    assert!(t.release(Direction::Read));
    t.set(t.fd, Direction::Write, "writer", Some(7)).unwrap();
    let event = Event {
        token: token(t.fd),
        readable: false,
        writable: true,
    };
    assert_eq!(t.fired(event), ["writer"]);
}

#[test]
fn another_object_renews_the_registration() {
    let mut t = fixture();
    t.set(t.fd, Direction::Read, "first", Some(7)).unwrap();
    t.release(Direction::Read);
    // As when the fd closed (the kernel dropping it) and its number was reused.
    t.poller.deregister(t.fd).unwrap();
    t.set(t.fd, Direction::Read, "second", Some(8)).unwrap();
    assert!(t.in_epoll());
    assert_eq!(t.detached.fileobjs, vec![7]);
    assert_eq!(t.registry.fd_of(|f| *f == 8), Some(t.fd));
    t.release(Direction::Read);
    t.poller.deregister(t.fd).unwrap();
    t.set(t.fd, Direction::Read, "by number", None).unwrap();
    assert!(t.in_epoll());
}

#[test]
fn lingering_ends_after_a_whole_pass_or_before_a_blocking_poll() {
    let mut t = fixture();
    t.set(t.fd, Direction::Read, "r", Some(7)).unwrap();
    t.settle(false);
    t.release(Direction::Read);
    t.settle(false);
    assert!(t.in_epoll());
    t.settle(false);
    assert!(!t.in_epoll());
    assert_eq!(t.detached.fileobjs, vec![7]);
    t.set(t.fd, Direction::Read, "r", Some(9)).unwrap();
    t.release(Direction::Read);
    t.settle(true);
    assert!(!t.in_epoll());
    assert_eq!(t.registry.lingering_fileobjs().count(), 0);
}

#[test]
fn an_event_for_a_lingering_fd_ends_it() {
    let mut t = fixture();
    t.set(t.fd, Direction::Read, "r", Some(7)).unwrap();
    t.release(Direction::Read);
    let event = Event {
        token: token(t.fd),
        readable: true,
        writable: false,
    };
    assert!(t.fired(event).is_empty());
    assert!(!t.in_epoll());
    assert_eq!(t.registry.lingering_fileobjs().count(), 0);
}

#[test]
fn release_with_the_other_direction_set_only_clears() {
    let mut t = fixture();
    t.set(t.fd, Direction::Read, "r", Some(7)).unwrap();
    t.set(t.fd, Direction::Write, "w", Some(7)).unwrap();
    assert!(t.release(Direction::Read));
    assert_eq!(t.registry.lingering_fileobjs().count(), 0);
    assert!(t.registry.has_user_fds() && t.in_epoll());
}

#[test]
fn drain_unregisters_a_lingering_fd() {
    let mut t = fixture();
    t.set(t.fd, Direction::Read, "r", Some(7)).unwrap();
    t.release(Direction::Read);
    let mut detached = Detached::default();
    t.registry.drain(Some(&t.poller), &mut detached);
    assert!(!t.in_epoll());
    assert_eq!(detached.fileobjs, vec![7]);
}

impl Fixture {
    fn hand_over(&mut self) -> bool {
        self.registry
            .hand_over(&self.poller, self.fd, &mut self.detached)
            .unwrap()
    }

    /// What epoll reports for `fd` now, if anything.
    fn polled(&self) -> Option<Event> {
        let (mut buffer, mut events) = (Default::default(), Vec::new());
        self.poller
            .poll_fd()
            .wait(&mut buffer, Some(std::time::Duration::ZERO), &mut events)
            .unwrap();
        events.into_iter().find(|e| e.token == token(self.fd))
    }
}

#[test]
fn a_handed_over_fd_is_watched_for_reading_and_taken_back_by_number() {
    use std::io::Write;
    let mut t = fixture();
    t.set(t.fd, Direction::Write, "connect", None).unwrap();
    assert!(t.polled().is_some_and(|e| e.writable));
    assert!(t.hand_over());
    assert_eq!(t.detached(), ["connect"]);
    assert!(t.registry.is_empty() && t.in_epoll());
    // Writable, but no longer watched for it: nothing to report until there is data.
    assert_eq!(t.polled(), None);
    (&t._pair.1).write_all(b"x").unwrap();
    let readable = Event {
        token: token(t.fd),
        readable: true,
        writable: false,
    };
    assert_eq!(t.polled(), Some(readable));
    t.set(t.fd, Direction::Read, "transport", None).unwrap();
    assert_eq!(t.registry.lingering_fileobjs().count(), 0);
    assert!(t.registry.has_user_fds());
    assert_eq!(t.fired(readable), ["transport"]);
    // Lingering for nobody, a pass later it goes as any other.
    t.clear(Direction::Read);
    t.set(t.fd, Direction::Write, "connect", None).unwrap();
    assert!(t.hand_over());
    t.settle(false);
    t.settle(false);
    assert!(!t.in_epoll());
}

#[test]
fn clearing_a_handed_over_fd_ends_its_lingering() {
    let mut t = fixture();
    t.set(t.fd, Direction::Write, "connect", None).unwrap();
    assert!(t.hand_over());
    // The transport closes before it read: the fd may be closed and its number reused.
    assert!(!t.clear(Direction::Read));
    assert!(!t.in_epoll());
    t.set(t.fd, Direction::Read, "reused", None).unwrap();
    assert!(t.in_epoll());
}

#[test]
fn a_writer_beside_a_reader_is_only_cleared_by_hand_over() {
    let mut t = fixture();
    t.set(t.fd, Direction::Read, "r", None).unwrap();
    t.set(t.fd, Direction::Write, "w", None).unwrap();
    assert!(t.hand_over());
    assert_eq!(t.detached(), ["w"]);
    assert!(t.registry.has_user_fds());
    assert_eq!(t.registry.lingering_fileobjs().count(), 0);
    assert!(t.polled().is_none_or(|e| !e.writable));
}
