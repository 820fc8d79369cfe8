//! gzip with multi-member semantics (pigz and some builders write several members),
//! stopping at each deflate block boundary so that resume points can be noted there. A
//! decoder resumed mid-member reads raw deflate and steps over that member's trailer by
//! itself.

use std::io::{self, Write};

use super::resume::Recorder;
use super::Output;
use crate::layer::inflate::{Framing, InflateError, Inflater, Stop};

/// Where a gzip decoder is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Member {
    /// Inside a member's header or deflate data.
    Inside,
    /// Between members: the next byte starts another (or the blob ends here).
    Between,
    /// Resumed mid-member: the first byte is shared with the block before.
    Prime(u8),
    /// Resumed mid-member, past its deflate data: skipping the unchecked trailer.
    Trailer(u8),
}

/// gzip with multi-member semantics, stopping at block boundaries to record.
pub(super) struct Gzip {
    pub(super) inflater: Inflater,
    pub(super) member: Member,
    /// Resumed inside a member: its deflate data is read raw (see `resumed_raw`).
    pub(super) raw: bool,
    pub(super) buffer: Box<[u8]>,
}

impl Gzip {
    /// Decodes `input`, which starts at blob offset `offset` (moved on past it), into
    /// `out`, telling `recorder` of each block boundary.
    pub(super) fn decode<W: Write>(
        &mut self,
        mut input: &[u8],
        offset: &mut u64,
        out: &mut Output<W>,
        recorder: &mut Option<Recorder>,
    ) -> io::Result<()> {
        let invalid = |e: InflateError| io::Error::new(io::ErrorKind::InvalidData, e);
        while !input.is_empty() {
            match self.member {
                Member::Prime(bits) => {
                    self.inflater.prime(bits, input[0]).map_err(invalid)?;
                    self.member = Member::Inside;
                    input = &input[1..];
                    *offset += 1;
                }
                Member::Trailer(left) => {
                    let n = usize::from(left).min(input.len());
                    input = &input[n..];
                    *offset += n as u64;
                    self.member =
                        if n == usize::from(left) { Member::Between } else { Member::Trailer(left - n as u8) };
                }
                Member::Between => {
                    self.inflater.reset(Framing::Gzip).map_err(invalid)?;
                    self.member = Member::Inside;
                }
                Member::Inside => {
                    let step = self.inflater.inflate(input, &mut self.buffer).map_err(invalid)?;
                    out.write(&self.buffer[..step.produced])?;
                    input = &input[step.consumed..];
                    *offset += step.consumed as u64;
                    match step.stop {
                        Stop::End if self.resumed_raw() => {
                            self.raw = false;
                            self.member = Member::Trailer(8);
                        }
                        Stop::End => self.member = Member::Between,
                        Stop::Boundary { bits, last: false } => {
                            if let Some(r) = recorder {
                                r.boundary(*offset, bits, out.position, Some(&self.inflater));
                            }
                        }
                        Stop::Boundary { last: true, .. } | Stop::More => {
                            if step.consumed == 0 && step.produced == 0 {
                                return Err(io::Error::new(io::ErrorKind::InvalidData, "inflate made no progress"));
                            }
                        }
                    }
                }
            }
        }
        Ok(())
    }

    /// A resumed decoder reads its first member raw, without the gzip header, so it
    /// must step over that member's trailer by itself.
    fn resumed_raw(&self) -> bool {
        self.raw
    }

    /// Whether the stream ended where a member did.
    pub(super) fn finish(&self) -> io::Result<()> {
        match self.member {
            Member::Between => Ok(()),
            _ => Err(io::Error::new(io::ErrorKind::UnexpectedEof, "the gzip stream ends inside a member")),
        }
    }
}
