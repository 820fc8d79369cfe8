//! Inflating deflate data with the controls random access needs, which flate2 does not
//! expose: stopping at each deflate block boundary (zlib's `Z_BLOCK`), reading the
//! sliding window there (`inflateGetDictionary`), and starting again later from that
//! bit position with that window (`inflatePrime`, `inflateSetDictionary`). This is the
//! technique of zlib's `examples/zran.c`, on zlib-rs (the same inflater flate2 uses
//! here) through its zlib-compatible API.
//!
//! All `unsafe` of the layer code is in this module: the stream is boxed so that its
//! address, which zlib's state points back to, never changes, and every pointer handed
//! to zlib comes from a slice that outlives the call.

use std::ffi::c_int;
use std::fmt;

use libz_rs_sys::{
    inflate, inflateEnd, inflateGetDictionary, inflateInit2_, inflatePrime, inflateReset2, inflateSetDictionary, uInt,
    z_stream, zlibVersion, Z_BLOCK, Z_BUF_ERROR, Z_OK, Z_STREAM_END,
};

/// The size of deflate's sliding window: what a resumed inflater must be given.
pub const WINDOW: usize = 32 * 1024;

/// What the deflate data is wrapped in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// A gzip member: header, deflate data, CRC-32 and length (both checked).
    Gzip,
    /// Bare deflate data, as met when resuming inside a member.
    Raw,
}

impl Framing {
    fn window_bits(self) -> c_int {
        match self {
            Framing::Gzip => 16 + 15,
            Framing::Raw => -15,
        }
    }
}

/// Deflate data that cannot be inflated: zlib's message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InflateError(pub String);

impl fmt::Display for InflateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InflateError {}

/// Where one call to [`Inflater::inflate`] stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// Input ran out or output filled up; call again.
    More,
    /// At a block boundary (or just after a gzip header): the next block starts
    /// `bits` bits before the end of the last byte consumed. `last` is true when the
    /// block just begun, or ended, is the stream's last.
    Boundary {
        /// Unused bits of the last input byte taken (0 to 7).
        bits: u8,
        /// The block in progress is the last of the member.
        last: bool,
    },
    /// The end of the deflate data (and, for gzip, its checked trailer).
    End,
}

/// Bytes taken and given by one call, and why it stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Step {
    /// Input bytes consumed.
    pub consumed: usize,
    /// Output bytes written.
    pub produced: usize,
    /// Why it stopped.
    pub stop: Stop,
}

/// One inflate stream; see the module docs.
pub struct Inflater {
    stream: Box<z_stream>,
}

// The stream owns its state exclusively; nothing in it is tied to a thread.
unsafe impl Send for Inflater {}

impl Inflater {
    /// A new inflater for `framing`.
    pub fn new(framing: Framing) -> Result<Inflater, InflateError> {
        let mut stream = Box::<z_stream>::default();
        // SAFETY: `stream` is a valid, boxed (so never moved) z_stream with the default
        // allocator; the version string is zlib-rs' own.
        let code = unsafe {
            inflateInit2_(&mut *stream, framing.window_bits(), zlibVersion(), std::mem::size_of::<z_stream>() as c_int)
        };
        let inflater = Inflater { stream };
        inflater.check(code)?;
        Ok(inflater)
    }

    /// Starts over, for a new gzip member or a new framing; the window is emptied.
    pub fn reset(&mut self, framing: Framing) -> Result<(), InflateError> {
        // SAFETY: the stream was initialised in `new`.
        let code = unsafe { inflateReset2(&mut *self.stream, framing.window_bits()) };
        self.check(code)
    }

    /// Feeds the top `bits` bits of `byte` first: a block that starts inside a byte
    /// begins with that byte's top bits (zran's use of `inflatePrime`).
    pub fn prime(&mut self, bits: u8, byte: u8) -> Result<(), InflateError> {
        if bits == 0 {
            return Ok(());
        }
        let value = c_int::from(byte >> (8 - bits));
        // SAFETY: the stream was initialised in `new`.
        let code = unsafe { inflatePrime(&mut *self.stream, c_int::from(bits), value) };
        self.check(code)
    }

    /// Sets the window a resumed raw stream refers back into.
    pub fn set_window(&mut self, window: &[u8]) -> Result<(), InflateError> {
        if window.is_empty() {
            return Ok(());
        }
        // SAFETY: the slice is valid for its length during the call, which copies it.
        let code = unsafe { inflateSetDictionary(&mut *self.stream, window.as_ptr(), window.len() as uInt) };
        self.check(code)
    }

    /// The current window (up to [`WINDOW`] bytes), replacing `into`'s contents.
    pub fn window(&self, into: &mut Vec<u8>) {
        into.clear();
        into.resize(WINDOW, 0);
        let mut len: uInt = 0;
        // SAFETY: `into` has room for WINDOW bytes, the most zlib writes.
        unsafe { inflateGetDictionary(&*self.stream, into.as_mut_ptr(), &mut len) };
        into.truncate(len as usize);
    }

    /// Inflates from `input` into `output`, stopping at the next block boundary.
    pub fn inflate(&mut self, input: &[u8], output: &mut [u8]) -> Result<Step, InflateError> {
        let avail_in = input.len().min(uInt::MAX as usize);
        let avail_out = output.len().min(uInt::MAX as usize);
        self.stream.next_in = input.as_ptr();
        self.stream.avail_in = avail_in as uInt;
        self.stream.next_out = output.as_mut_ptr();
        self.stream.avail_out = avail_out as uInt;
        // SAFETY: next_in/next_out point into slices that live across the call, with
        // their lengths as avail_in/avail_out.
        let code = unsafe { inflate(&mut *self.stream, Z_BLOCK) };
        let consumed = avail_in - self.stream.avail_in as usize;
        let produced = avail_out - self.stream.avail_out as usize;
        // Dangling pointers are not left behind in the stream.
        self.stream.next_in = std::ptr::null();
        self.stream.avail_in = 0;
        self.stream.next_out = std::ptr::null_mut();
        self.stream.avail_out = 0;
        let stop = match code {
            Z_STREAM_END => Stop::End,
            Z_OK | Z_BUF_ERROR => {
                let data_type = self.stream.data_type;
                if data_type & 128 != 0 {
                    Stop::Boundary { bits: (data_type & 7) as u8, last: data_type & 64 != 0 }
                } else {
                    Stop::More
                }
            }
            other => return Err(self.error(other)),
        };
        Ok(Step { consumed, produced, stop })
    }

    fn check(&self, code: c_int) -> Result<(), InflateError> {
        if code == Z_OK {
            Ok(())
        } else {
            Err(self.error(code))
        }
    }

    fn error(&self, code: c_int) -> InflateError {
        let message = if self.stream.msg.is_null() {
            format!("zlib error {code}")
        } else {
            // SAFETY: zlib's messages are static NUL-terminated strings.
            unsafe { std::ffi::CStr::from_ptr(self.stream.msg) }.to_string_lossy().into_owned()
        };
        InflateError(message)
    }
}

impl Drop for Inflater {
    fn drop(&mut self) {
        // SAFETY: the stream was initialised in `new` and is ended once.
        unsafe { inflateEnd(&mut *self.stream) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8], level: u32) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn sample(len: usize) -> Vec<u8> {
        let mut x = 12345u32;
        (0..len)
            .map(|i| {
                x = x.wrapping_mul(1_103_515_245).wrapping_add(12345);
                if i % 7 < 4 {
                    b"abcdefgh"[(x >> 16) as usize % 8]
                } else {
                    (x >> 24) as u8
                }
            })
            .collect()
    }

    /// An inner block boundary: input offset, bits, output offset, window.
    type Boundary = (usize, u8, usize, Vec<u8>);

    /// Inflates all of `blob`, noting every inner block boundary.
    fn inflate_all(blob: &[u8]) -> (Vec<u8>, Vec<Boundary>) {
        let mut inflater = Inflater::new(Framing::Gzip).unwrap();
        let (mut out, mut points) = (Vec::new(), Vec::new());
        let mut buf = vec![0; 7000];
        let mut at = 0;
        loop {
            let step = inflater.inflate(&blob[at..], &mut buf).unwrap();
            at += step.consumed;
            out.extend_from_slice(&buf[..step.produced]);
            match step.stop {
                Stop::End => break,
                Stop::Boundary { bits, last: false } => {
                    let mut window = Vec::new();
                    inflater.window(&mut window);
                    points.push((at, bits, out.len(), window));
                }
                _ => {}
            }
        }
        (out, points)
    }

    #[test]
    fn resuming_at_every_block_boundary_gives_the_same_bytes() {
        let data = sample(600_000);
        for level in [1, 6, 9] {
            let blob = gzip(&data, level);
            let (whole, points) = inflate_all(&blob);
            assert!(whole == data);
            assert!(!points.is_empty(), "level {level}: no block boundary");
            for (at, bits, out_at, window) in points {
                let mut inflater = Inflater::new(Framing::Raw).unwrap();
                let start = if bits > 0 { at - 1 } else { at };
                if bits > 0 {
                    inflater.prime(bits, blob[start]).unwrap();
                }
                inflater.set_window(&window).unwrap();
                let mut out = Vec::new();
                let mut buf = vec![0; 5000];
                let mut pos = at;
                loop {
                    let step = inflater.inflate(&blob[pos..], &mut buf).unwrap();
                    pos += step.consumed;
                    out.extend_from_slice(&buf[..step.produced]);
                    if step.stop == Stop::End {
                        break;
                    }
                }
                assert!(out == data[out_at..], "level {level}, resumed at {at}/{bits}");
                // The 8-byte trailer is all that is left.
                assert_eq!(blob.len() - pos, 8);
            }
        }
    }

    #[test]
    fn corrupt_data_is_an_error_not_a_panic() {
        let mut blob = gzip(&sample(100_000), 6);
        let mid = blob.len() / 2;
        blob[mid..mid + 16].fill(0xff);
        let mut inflater = Inflater::new(Framing::Gzip).unwrap();
        let mut buf = vec![0; 1 << 16];
        let mut at = 0;
        let failed = loop {
            match inflater.inflate(&blob[at..], &mut buf) {
                Err(e) => break e,
                Ok(step) if step.stop == Stop::End => panic!("corruption went unnoticed"),
                Ok(step) => at += step.consumed,
            }
        };
        assert!(!failed.0.is_empty());
    }
}
