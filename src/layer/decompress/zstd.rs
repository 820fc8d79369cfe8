//! zstd, frame by frame (a blob may have several), noting where frames start: each is
//! a resume point that needs no window. The window a frame may ask for is capped, since
//! the decoder allocates whatever a frame declares.

use std::io::{self, Write};

use super::resume::Recorder;
use super::{out_buffer, Output};

/// The largest zstd window decoded, as a power of two: 8 MiB, what `zstd -19` uses at
/// most. A frame may declare up to 2 GiB (`--long=31`), and the decoder would allocate
/// it: a 6 KB blob could cost 128 MiB. With 4 listings and 32 previews or saves at once,
/// zstd windows take at most 36 × 8 MiB = 288 MiB in all.
pub const MAX_ZSTD_WINDOW_LOG: u32 = 23;

/// zstd, frame by frame, noting where frames start.
pub(super) struct Zstd {
    context: ::zstd::stream::raw::Decoder<'static>,
    in_frame: bool,
    buffer: Box<[u8]>,
}

impl Zstd {
    /// Decodes `input`, which starts at blob offset `offset` (moved on past it), into
    /// `out`, telling `recorder` of frame starts and marks.
    pub(super) fn decode<W: Write>(
        &mut self,
        input: &[u8],
        offset: &mut u64,
        out: &mut Output<W>,
        recorder: &mut Option<Recorder>,
    ) -> io::Result<()> {
        use ::zstd::stream::raw::{InBuffer, Operation, OutBuffer};
        let mut src = InBuffer::around(input);
        loop {
            let before = src.pos();
            let mut dst = OutBuffer::around(&mut self.buffer[..]);
            let hint = self.context.run(&mut src, &mut dst).map_err(|e| {
                if e.to_string().contains("too much memory") {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!(
                            "a zstd frame needs a window larger than the {} MiB layerpipe decodes \
                             (written with zstd --long?)",
                            (1u64 << MAX_ZSTD_WINDOW_LOG) >> 20
                        ),
                    )
                } else {
                    e
                }
            })?;
            let produced = dst.pos();
            out.write(&self.buffer[..produced])?;
            *offset += (src.pos() - before) as u64;
            // 0: a frame is complete and flushed, so the next byte starts a frame.
            self.in_frame = hint != 0;
            if let Some(r) = recorder.as_mut() {
                if self.in_frame {
                    r.mark(*offset, out.position);
                } else {
                    r.boundary(*offset, 0, out.position, None);
                }
            }
            if src.pos() == input.len() && produced < self.buffer.len() {
                return Ok(());
            }
        }
    }

    /// Whether the stream ended where a frame did.
    pub(super) fn finish(&self) -> io::Result<()> {
        if self.in_frame {
            Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the zstd stream ends inside a frame"))
        } else {
            Ok(())
        }
    }
}

/// A zstd decoder whose window is capped at [`MAX_ZSTD_WINDOW_LOG`].
pub(super) fn zstd_decoder() -> io::Result<Zstd> {
    let mut context = ::zstd::stream::raw::Decoder::new()?;
    context.set_parameter(::zstd::stream::raw::DParameter::WindowLogMax(MAX_ZSTD_WINDOW_LOG))?;
    Ok(Zstd { context, in_frame: false, buffer: out_buffer() })
}
