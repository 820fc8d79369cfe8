//! The read buffers of one blob connection, reused once their frames are gone.
//!
//! Danger first: a body frame is cut from the buffer the socket was read into, and keeps
//! that whole allocation alive until the client and the hashing thread have let it go.
//! A connection that took a fresh buffer whenever the current one was full handed every
//! old one back to malloc, which kept the 4 MiB blocks it could not reuse in place
//! (`crate::allocator` keeps freed memory on purpose), in the arena of the thread that
//! allocated them: downloads on the other core's runtime then faulted in a set of their
//! own. One verified stream peaked at 40–66 MiB where its live buffers were a third of
//! that (BENCHMARKS.md, "One download in a few MiB").
//!
//! - A connection with large buffers keeps its last few ([`KEPT`]) and moves on to the
//!   first one whose frames have all been dropped; it allocates only when every one is
//!   still held. Past [`KEPT`], the oldest is let go: its frames free it when they go.
//! - When it ends, its buffers go to the process's [`Spares`] (at most [`SPARES`]), where
//!   the next large connection, on whichever thread, takes them before allocating.
//! - A connection with small buffers (no loan) keeps none besides the current one: many
//!   of those run at once, and malloc reuses blocks that small as they come; kept, they
//!   only added to every connection's share (64 streams: 79 MiB peak against 66).
//! - Moving on copies the current buffer's unread tail (a partial chunk header, a
//!   partial line) into the next buffer: bytes, not a buffer's worth.
//!
//! The known gap: a spare still held by a frame of a finished download (a client that
//! has not taken its last bytes) takes a slot until that frame goes; the next
//! connection then allocates.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::BytesMut;

/// How many full buffers a connection with large buffers keeps for reuse besides the
/// one it reads into: enough for a frame being written, one being hashed and the next
/// read.
pub const KEPT: usize = 3;

/// How many large buffers the process keeps between connections: one connection's set.
pub const SPARES: usize = 1 + KEPT;

/// Large buffers given back by connections that ended, for the next one; clones share
/// them.
#[derive(Clone, Default)]
pub struct Spares(Arc<Mutex<Vec<BytesMut>>>);

impl Spares {
    /// A spare of at least `size` bytes whose frames are all gone, emptied.
    fn take(&self, size: usize) -> Option<BytesMut> {
        let mut spares = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        let i = spares.iter_mut().position(|b| b.try_reclaim(size))?;
        Some(spares.swap_remove(i))
    }

    /// Keeps `buffers`, emptied, while there is room.
    fn give(&self, buffers: impl Iterator<Item = BytesMut>) {
        let mut spares = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        for mut b in buffers {
            if spares.len() == SPARES {
                break;
            }
            b.clear();
            spares.push(b);
        }
    }
}

/// One connection's read buffers: frames are cut from the front of the current one.
pub struct ReadBuffers {
    current: BytesMut,
    kept: VecDeque<BytesMut>,
    /// How many old buffers may be kept for reuse.
    keep: usize,
    size: usize,
    /// Where large buffers come from and go back to.
    spares: Option<Spares>,
}

impl ReadBuffers {
    /// Small buffers of `size` bytes: the current one is reused in place when its frames
    /// are gone, and no other is kept.
    pub fn small(size: usize) -> ReadBuffers {
        ReadBuffers { current: BytesMut::with_capacity(size), kept: VecDeque::new(), keep: 0, size, spares: None }
    }

    /// Large buffers of `size` bytes, taken from `spares` when it has one and given back
    /// to it when the connection ends, up to [`KEPT`] old ones kept meanwhile.
    pub fn large(size: usize, spares: Spares) -> ReadBuffers {
        let current = spares.take(size).unwrap_or_else(|| BytesMut::with_capacity(size));
        ReadBuffers { current, kept: VecDeque::new(), keep: KEPT, size, spares: Some(spares) }
    }

    /// The bytes read and not yet handed out.
    pub fn unread(&mut self) -> &mut BytesMut {
        &mut self.current
    }

    /// The current buffer with at least `room` bytes free after its unread bytes: as it
    /// is, reclaimed in place, a kept or spare one whose frames are gone, or a new one.
    pub fn with_room(&mut self, room: usize) -> &mut BytesMut {
        let room = room.min(self.size);
        if self.current.capacity() - self.current.len() >= room || self.current.try_reclaim(room) {
            return &mut self.current;
        }
        let size = self.size.max(self.current.len() + room);
        let next = match self.kept.iter_mut().position(|b| b.try_reclaim(size)) {
            Some(i) => self.kept.remove(i).unwrap_or_default(),
            None => self.spares.as_ref().and_then(|s| s.take(size)).unwrap_or_else(|| BytesMut::with_capacity(size)),
        };
        let mut old = std::mem::replace(&mut self.current, next);
        self.current.extend_from_slice(&old);
        old.clear();
        self.kept.push_back(old);
        if self.kept.len() > self.keep {
            self.kept.pop_front();
        }
        &mut self.current
    }
}

impl Drop for ReadBuffers {
    fn drop(&mut self) {
        if let Some(spares) = &self.spares {
            let current = std::mem::take(&mut self.current);
            spares.give(std::iter::once(current).chain(self.kept.drain(..)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The address of a buffer's allocation, as far as a test can tell: where its spare
    /// room starts once it is empty and reclaimed.
    fn start(b: &mut BytesMut) -> *const u8 {
        b.as_ptr()
    }

    #[test]
    fn a_buffer_whose_frames_are_gone_is_read_into_again() {
        let mut buffers = ReadBuffers::large(1024, Spares::default());
        let first = start(buffers.with_room(512));
        buffers.with_room(512).extend_from_slice(&[1; 1000]);
        let frame = buffers.unread().split_to(1000).freeze();
        drop(frame);
        // The frame is gone: the same allocation again, no new one.
        assert_eq!(start(buffers.with_room(512)), first);
    }

    #[test]
    fn held_frames_keep_their_bytes_and_the_reads_move_on() {
        let mut buffers = ReadBuffers::large(1024, Spares::default());
        buffers.with_room(512).extend_from_slice(&[1; 1000]);
        let held = buffers.unread().split_to(990).freeze();
        // 10 unread bytes stay; the next read needs more room than is left.
        let next = buffers.with_room(512);
        assert_eq!(&next[..], &[1; 10], "the unread tail moves with the reads");
        next.extend_from_slice(&[2; 500]);
        assert_eq!(&held[..], &[1; 990][..], "a held frame is never written over");
        let second = buffers.unread().split_to(510).freeze();
        assert_eq!(&second[..10], &[1; 10]);
        assert_eq!(&second[10..], &[2; 500][..]);
        // Once the first frame goes, its buffer is the one reused.
        let first_buffer = held.as_ptr();
        drop(held);
        assert_eq!(start(buffers.with_room(1024)), first_buffer);
        assert_eq!(&second[10..], &[2; 500][..], "the other buffer's frame is intact");
    }

    #[test]
    fn no_more_than_kept_buffers_are_held_for_reuse() {
        let mut buffers = ReadBuffers::large(64, Spares::default());
        let mut frames = Vec::new();
        for i in 0..10u8 {
            buffers.with_room(64).extend_from_slice(&[i; 64]);
            frames.push(buffers.unread().split_to(64).freeze());
        }
        assert!(buffers.kept.len() <= KEPT);
        for (i, f) in frames.iter().enumerate() {
            assert!(f.iter().all(|&b| b == i as u8), "frame {i} is intact");
        }
    }

    #[test]
    fn a_finished_connections_buffers_serve_the_next_one() {
        let spares = Spares::default();
        let mut first = ReadBuffers::large(1024, spares.clone());
        first.with_room(512).extend_from_slice(&[1; 1000]);
        let frame = first.unread().split_to(1000).freeze();
        let address = frame.as_ptr();
        drop(first);
        // Its frame is still out: the next connection must not read into that buffer.
        let mut second = ReadBuffers::large(1024, spares.clone());
        assert_ne!(start(second.with_room(1024)), address);
        assert_eq!(&frame[..], &[1; 1000][..]);
        drop(second);
        drop(frame);
        let mut third = ReadBuffers::large(1024, spares.clone());
        let mut addresses = vec![start(third.with_room(1024))];
        third.with_room(1024).extend_from_slice(&[3; 1024]);
        let _held = third.unread().split_to(1024).freeze();
        addresses.push(start(third.with_room(1024)));
        assert!(addresses.contains(&address), "the first buffer is reused once its frame is gone");
        assert!(spares.0.lock().unwrap().len() <= SPARES);
    }

    #[test]
    fn small_buffers_are_never_kept() {
        let mut buffers = ReadBuffers::small(64);
        let mut frames = Vec::new();
        for i in 0..4u8 {
            buffers.with_room(64).extend_from_slice(&[i; 64]);
            frames.push(buffers.unread().split_to(64).freeze());
        }
        assert!(buffers.kept.is_empty());
    }
}
