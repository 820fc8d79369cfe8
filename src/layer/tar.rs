//! A push-based tar reader. Bytes go in through [`std::io::Write`] as they come out of
//! the decompressor, split anywhere (a header may straddle two frames), and a
//! [`Visitor`] hears of each entry as its header passes. File contents are skipped by
//! counting, never copied, unless the visitor asks for them.
//!
//! Formats: ustar (with its `prefix` field), old GNU (long names `L`, long links `K`,
//! old sparse files `S`), PAX extended headers `x` and globals `g` (`path`, `linkpath`,
//! `size`, `uid`, `gid`, `mtime`), base-256 numbers. Header-only types (links, devices,
//! directories, fifos) carry no data whatever their size field says, as in Go's
//! archive/tar, which is what Docker and containerd unpack layers with.
//!
//! The reader never fails a write: a damaged archive moves it to a failed state that
//! swallows the rest, and [`Scanner::finish`] says what happened and where.

use std::fmt;
use std::io;
use std::ops::ControlFlow;

/// The tar block size: headers and the padding after data are whole blocks.
const BLOCK: usize = 512;

/// Largest PAX extended header or GNU long name/link accepted, as in Go's archive/tar:
/// these are held in memory whole, so an absurd size must not be believed.
pub const MAX_EXTENSION_BYTES: u64 = 1 << 20;

/// What kind of entry a header describes (its type flag).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TypeFlag {
    /// A regular file (`0`, NUL, or contiguous `7`).
    File,
    /// A hard link to an earlier entry (`1`).
    HardLink,
    /// A symbolic link (`2`).
    Symlink,
    /// A character device (`3`).
    CharDevice,
    /// A block device (`4`).
    BlockDevice,
    /// A directory (`5`).
    Dir,
    /// A named pipe (`6`).
    Fifo,
    /// An old GNU sparse file (`S`): only the non-hole parts are in the archive.
    Sparse,
    /// Any other type flag (GNU volume labels, dump dirs, vendor extensions).
    Other(u8),
}

impl TypeFlag {
    /// The type for a header's type-flag byte.
    pub fn from_byte(flag: u8) -> TypeFlag {
        match flag {
            b'0' | 0 | b'7' => TypeFlag::File,
            b'1' => TypeFlag::HardLink,
            b'2' => TypeFlag::Symlink,
            b'3' => TypeFlag::CharDevice,
            b'4' => TypeFlag::BlockDevice,
            b'5' => TypeFlag::Dir,
            b'6' => TypeFlag::Fifo,
            b'S' => TypeFlag::Sparse,
            other => TypeFlag::Other(other),
        }
    }

    /// Types whose data is always empty, whatever the header's size field says.
    fn is_header_only(self) -> bool {
        matches!(
            self,
            TypeFlag::HardLink
                | TypeFlag::Symlink
                | TypeFlag::CharDevice
                | TypeFlag::BlockDevice
                | TypeFlag::Dir
                | TypeFlag::Fifo
        )
    }
}

/// One entry's header, with PAX and GNU extensions applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// The name as the archive has it (not normalised).
    pub path: Vec<u8>,
    /// The link target of hard and symbolic links (empty otherwise).
    pub link: Vec<u8>,
    /// The entry's type.
    pub kind: TypeFlag,
    /// The file's size; for an old GNU sparse file, its size with the holes.
    pub size: u64,
    /// Permission and special bits (the low 12 bits of the mode field).
    pub mode: u32,
    /// Owner.
    pub uid: u64,
    /// Group.
    pub gid: u64,
    /// Modification time, seconds since 1970.
    pub mtime: i64,
    /// Major number of a device.
    pub dev_major: u32,
    /// Minor number of a device.
    pub dev_minor: u32,
    /// Offset in the archive of the entry's first header block (its PAX or GNU
    /// extension headers included): where reading may start to meet this entry whole.
    pub offset: u64,
    /// Offset in the archive of the entry's data (set as the entry is shown).
    pub data_offset: u64,
}

#[cfg(test)]
impl Header {
    /// A header as tests want one: `path`, `kind`, `size`, `link`, its first block at
    /// `offset` and its data one block on; mode 0644, owned by root, dated 1970.
    pub(crate) fn sample(path: &str, kind: TypeFlag, size: u64, link: &str, offset: u64) -> Header {
        Header {
            path: path.as_bytes().to_vec(),
            link: link.as_bytes().to_vec(),
            kind,
            size,
            mode: 0o644,
            uid: 0,
            gid: 0,
            mtime: 0,
            dev_major: 0,
            dev_minor: 0,
            offset,
            data_offset: offset + 512,
        }
    }
}

/// What a visitor wants done with the entry it was just shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Want {
    /// Skip its data (counted past, never copied).
    Skip,
    /// Pass its data to [`Visitor::data`].
    Data,
    /// Stop reading the archive.
    Stop,
}

impl Want {
    /// The data of the `index`-th entry (from 0) only, for visitors that want one entry;
    /// `seen` counts the entries shown so far.
    pub fn only_entry(index: usize, seen: &mut usize) -> Want {
        *seen += 1;
        if *seen - 1 == index {
            Want::Data
        } else {
            Want::Skip
        }
    }
}

/// Hears of entries as their headers pass.
pub trait Visitor {
    /// A new entry; the answer says what to do with its data.
    fn entry(&mut self, header: Header) -> Want;

    /// Part of the data of the entry last shown (only when it answered [`Want::Data`]),
    /// as it passes; `end` is true on the last part (which may be empty). Breaking stops
    /// the archive.
    fn data(&mut self, bytes: &[u8], end: bool) -> ControlFlow<()> {
        let _ = (bytes, end);
        ControlFlow::Continue(())
    }
}

/// A damaged archive: what is wrong, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TarError {
    /// Offset in the uncompressed archive of the header (or record) at fault.
    pub offset: u64,
    /// What is wrong with it.
    pub problem: String,
}

impl fmt::Display for TarError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at byte {} of the archive", self.problem, self.offset)
    }
}

/// How reading an archive ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The end-of-archive marker (zero blocks) was reached.
    End,
    /// The bytes ended between two entries, without an end marker; readers accept this.
    Eof,
    /// The visitor asked to stop.
    Stopped,
    /// The bytes ended inside an entry; says inside what.
    Truncated(String),
    /// The archive is damaged.
    Failed(TarError),
}

/// Values from PAX records (local or global), GNU long names, or nothing.
#[derive(Clone, Debug, Default)]
struct Overrides {
    path: Option<Vec<u8>>,
    link: Option<Vec<u8>>,
    size: Option<u64>,
    uid: Option<u64>,
    gid: Option<u64>,
    mtime: Option<i64>,
}

impl Overrides {
    /// Applies PAX records; unknown keys are ignored, an empty value unsets.
    fn apply_pax(&mut self, records: &[u8], offset: u64) -> Result<(), TarError> {
        for (key, value) in pax_records(records, offset)? {
            let number = |what: &str| {
                std::str::from_utf8(value)
                    .ok()
                    .and_then(|s| s.parse::<u64>().ok())
                    .ok_or_else(|| TarError { offset, problem: format!("PAX {what} is not a number") })
            };
            let unset = value.is_empty();
            match key {
                b"path" => self.path = (!unset).then(|| value.to_vec()),
                b"linkpath" => self.link = (!unset).then(|| value.to_vec()),
                b"size" if unset => self.size = None,
                b"size" => self.size = Some(number("size")?),
                b"uid" if unset => self.uid = None,
                b"uid" => self.uid = Some(number("uid")?),
                b"gid" if unset => self.gid = None,
                b"gid" => self.gid = Some(number("gid")?),
                b"mtime" => self.mtime = pax_time(value),
                _ => {}
            }
        }
        Ok(())
    }
}

/// Which extension header's data is being collected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Extension {
    /// PAX `x`: applies to the next entry.
    PaxLocal,
    /// PAX `g`: applies to every later entry.
    PaxGlobal,
    /// GNU `L`: the next entry's name.
    LongName,
    /// GNU `K`: the next entry's link target.
    LongLink,
}

enum State {
    /// Collecting a header block (or, after one zero block, the next block).
    Header { after_zero_block: bool },
    /// Collecting the data of an extension header, then its padding.
    Extension { kind: Extension, data: Vec<u8>, remaining: u64, at: u64 },
    /// Collecting old GNU sparse extension blocks before the data of `header`.
    SparseMap { header: Box<Header>, stored: u64 },
    /// Passing an entry's data (to the visitor, or past it).
    Data { remaining: u64, deliver: bool },
    /// Skipping padding to the next block boundary.
    Padding { remaining: u64 },
    /// Nothing more is read.
    Done(Done),
}

#[derive(Clone, Debug)]
enum Done {
    End,
    Stopped,
    Failed(TarError),
}

/// The push-based reader; see the module docs.
pub struct Scanner<V> {
    visitor: V,
    state: State,
    /// The block being collected and how much of it is filled.
    block: Box<[u8; BLOCK]>,
    filled: usize,
    /// Bytes of the archive taken in so far.
    position: u64,
    /// Offset of the block being collected.
    block_start: u64,
    global: Overrides,
    local: Overrides,
    entries: u64,
    /// Where the entry being read began, from its first (extension) header block.
    entry_start: Option<u64>,
}

impl<V: Visitor> Scanner<V> {
    /// A reader at the start of an archive, telling `visitor` what it finds.
    pub fn new(visitor: V) -> Scanner<V> {
        Scanner::at(visitor, 0)
    }

    /// A reader whose first byte is at `offset` of an archive: an entry's first header
    /// block, when resuming from an index. Offsets it reports count from the archive's
    /// start; PAX globals met before `offset` are not known.
    pub fn at(visitor: V, offset: u64) -> Scanner<V> {
        Scanner {
            visitor,
            state: State::Header { after_zero_block: false },
            block: Box::new([0; BLOCK]),
            filled: 0,
            position: offset,
            block_start: offset,
            global: Overrides::default(),
            local: Overrides::default(),
            entries: 0,
            entry_start: None,
        }
    }

    /// The visitor.
    pub fn visitor(&self) -> &V {
        &self.visitor
    }

    /// Entries shown to the visitor so far.
    pub fn entries(&self) -> u64 {
        self.entries
    }

    /// Bytes of the archive taken in so far.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// True once nothing more will be read: the end marker, a stop, or damage.
    pub fn is_done(&self) -> bool {
        matches!(self.state, State::Done(_))
    }

    /// Takes in the next bytes of the archive.
    pub fn feed(&mut self, mut input: &[u8]) {
        while !input.is_empty() {
            let used = match &mut self.state {
                State::Done(_) => return,
                State::Header { .. } | State::SparseMap { .. } => {
                    let n = (BLOCK - self.filled).min(input.len());
                    self.block[self.filled..self.filled + n].copy_from_slice(&input[..n]);
                    self.filled += n;
                    n
                }
                State::Data { remaining, deliver } => {
                    let n = input.len().min(usize::try_from(*remaining).unwrap_or(usize::MAX));
                    *remaining -= n as u64;
                    let (deliver, end) = (*deliver, *remaining == 0);
                    if deliver && self.visitor.data(&input[..n], end).is_break() {
                        self.state = State::Done(Done::Stopped);
                    }
                    n
                }
                State::Extension { data, remaining, .. } => {
                    let n = input.len().min(usize::try_from(*remaining).unwrap_or(usize::MAX));
                    data.extend_from_slice(&input[..n]);
                    *remaining -= n as u64;
                    n
                }
                State::Padding { remaining } => {
                    let n = input.len().min(usize::try_from(*remaining).unwrap_or(usize::MAX));
                    *remaining -= n as u64;
                    n
                }
            };
            input = &input[used..];
            self.position += used as u64;
            self.advance();
        }
    }

    /// Moves on through every state that needs no more input.
    fn advance(&mut self) {
        loop {
            let state = std::mem::replace(&mut self.state, State::Done(Done::Stopped));
            let (next, again) = self.step(state);
            self.state = next;
            if !again {
                return;
            }
        }
    }

    /// One move from `state`: the next state, and whether it may move on at once.
    fn step(&mut self, state: State) -> (State, bool) {
        match state {
            State::Header { after_zero_block } if self.filled == BLOCK => {
                self.filled = 0;
                let at = self.block_start;
                self.block_start = self.position;
                (self.header_block(after_zero_block, at), true)
            }
            State::SparseMap { header, stored } if self.filled == BLOCK => {
                self.filled = 0;
                self.block_start = self.position;
                // Byte 504 of each sparse extension block says whether another follows.
                if self.block[504] == 0 {
                    (self.emit(*header, stored), true)
                } else {
                    (State::SparseMap { header, stored }, false)
                }
            }
            State::Extension { kind, data, remaining: 0, at } => match self.extension(kind, data, at) {
                Ok(()) => (State::Padding { remaining: padding(self.position) }, true),
                Err(e) => (State::Done(Done::Failed(e)), false),
            },
            State::Data { remaining: 0, .. } => (State::Padding { remaining: padding(self.position) }, true),
            State::Padding { remaining: 0 } => {
                self.block_start = self.position;
                (State::Header { after_zero_block: false }, false)
            }
            other => (other, false),
        }
    }

    /// A whole header block, which started at `at`, has arrived.
    fn header_block(&mut self, after_zero_block: bool, at: u64) -> State {
        if self.block.iter().all(|&b| b == 0) {
            return if after_zero_block { State::Done(Done::End) } else { State::Header { after_zero_block: true } };
        }
        // A lone zero block followed by a header is read on, as GNU tar does.
        self.parse_header(at).unwrap_or_else(|e| State::Done(Done::Failed(e)))
    }

    /// The state a header block leads to: an extension's data, a sparse map, or the
    /// entry (shown to the visitor) and its data.
    fn parse_header(&mut self, at: u64) -> Result<State, TarError> {
        let start = *self.entry_start.get_or_insert(at);
        let block = &*self.block;
        let fail = |problem: &str| TarError { offset: at, problem: problem.to_owned() };
        check_checksum(block).map_err(|p| fail(&p))?;
        let number = |range: std::ops::Range<usize>, what: &str| {
            parse_number(&block[range]).map_err(|p| fail(&format!("the {what} field {p}")))
        };
        let flag = block[156];
        let size = number(124..136, "size")?;
        let extension = match flag {
            b'x' => Some(Extension::PaxLocal),
            b'g' => Some(Extension::PaxGlobal),
            b'L' => Some(Extension::LongName),
            b'K' => Some(Extension::LongLink),
            _ => None,
        };
        if let Some(kind) = extension {
            if size > MAX_EXTENSION_BYTES {
                return Err(fail(&format!(
                    "an extended header claims {size} bytes (more than the {MAX_EXTENSION_BYTES} accepted)"
                )));
            }
            return Ok(State::Extension { kind, data: Vec::with_capacity(size as usize), remaining: size, at });
        }
        let kind = TypeFlag::from_byte(flag);
        let posix = &block[257..263] == b"ustar\0";
        let mut path = cstr(&block[0..100]).to_vec();
        if posix && block[345] != 0 {
            let mut full = cstr(&block[345..500]).to_vec();
            full.push(b'/');
            full.extend_from_slice(&path);
            path = full;
        }
        let local = std::mem::take(&mut self.local);
        let global = &self.global;
        let is_device = matches!(kind, TypeFlag::CharDevice | TypeFlag::BlockDevice);
        let device = |range, what| if is_device { number(range, what) } else { Ok(0) };
        let mut header = Header {
            path: local.path.or_else(|| global.path.clone()).unwrap_or(path),
            link: local.link.or_else(|| global.link.clone()).unwrap_or_else(|| cstr(&block[157..257]).to_vec()),
            kind,
            size: local.size.or(global.size).unwrap_or(size),
            mode: (number(100..108, "mode")? & 0o7777) as u32,
            uid: local.uid.or(global.uid).map_or_else(|| number(108..116, "uid"), Ok)?,
            gid: local.gid.or(global.gid).map_or_else(|| number(116..124, "gid"), Ok)?,
            mtime: local
                .mtime
                .or(global.mtime)
                .map_or_else(|| number(136..148, "mtime").map(|t| i64::try_from(t).unwrap_or(i64::MAX)), Ok)?,
            dev_major: u32::try_from(device(329..337, "device major")?).unwrap_or(u32::MAX),
            dev_minor: u32::try_from(device(337..345, "device minor")?).unwrap_or(u32::MAX),
            offset: start,
            data_offset: 0,
        };
        let mut stored = header.size;
        if kind == TypeFlag::Sparse {
            // Old GNU sparse: the size field counts the stored parts; the real size and
            // whether extension blocks follow are in the GNU area of the header.
            header.size = number(483..495, "sparse real size")?;
            if block[482] != 0 {
                return Ok(State::SparseMap { header: Box::new(header), stored });
            }
        }
        if kind.is_header_only() {
            stored = 0;
            header.size = 0;
        }
        Ok(self.emit(header, stored))
    }

    /// Shows an entry to the visitor; the state for its `stored` bytes of data.
    fn emit(&mut self, mut header: Header, stored: u64) -> State {
        self.entries += 1;
        self.entry_start = None;
        header.data_offset = self.position;
        match self.visitor.entry(header) {
            Want::Stop => State::Done(Done::Stopped),
            Want::Skip => State::Data { remaining: stored, deliver: false },
            Want::Data if stored == 0 => match self.visitor.data(&[], true) {
                ControlFlow::Continue(()) => State::Data { remaining: 0, deliver: true },
                ControlFlow::Break(()) => State::Done(Done::Stopped),
            },
            Want::Data => State::Data { remaining: stored, deliver: true },
        }
    }

    /// An extension header's data is complete.
    fn extension(&mut self, kind: Extension, data: Vec<u8>, at: u64) -> Result<(), TarError> {
        match kind {
            Extension::PaxLocal => self.local.apply_pax(&data, at),
            Extension::PaxGlobal => self.global.apply_pax(&data, at),
            Extension::LongName => {
                self.local.path = Some(cstr(&data).to_vec());
                Ok(())
            }
            Extension::LongLink => {
                self.local.link = Some(cstr(&data).to_vec());
                Ok(())
            }
        }
    }

    /// The bytes have ended: how reading went, and the visitor back.
    pub fn finish(self) -> (V, Outcome) {
        let outcome = match self.state {
            State::Done(Done::End) => Outcome::End,
            State::Done(Done::Stopped) => Outcome::Stopped,
            State::Done(Done::Failed(e)) => Outcome::Failed(e),
            State::Header { after_zero_block: true } => Outcome::End,
            State::Header { .. } if self.filled == 0 => Outcome::Eof,
            State::Header { .. } => Outcome::Truncated(format!("a header, at byte {}", self.block_start)),
            State::SparseMap { .. } => Outcome::Truncated("a sparse file's map".to_owned()),
            State::Extension { at, .. } => Outcome::Truncated(format!("an extended header, at byte {at}")),
            State::Data { remaining, .. } => {
                Outcome::Truncated(format!("the data of entry {} ({remaining} bytes missing)", self.entries))
            }
            // Only padding is missing: every entry arrived whole.
            State::Padding { .. } => Outcome::Eof,
        };
        (self.visitor, outcome)
    }
}

impl<V: Visitor> io::Write for Scanner<V> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.feed(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Bytes of padding after a record ending at `position`.
fn padding(position: u64) -> u64 {
    (BLOCK as u64 - position % BLOCK as u64) % BLOCK as u64
}

/// A NUL-terminated field, up to its first NUL.
fn cstr(field: &[u8]) -> &[u8] {
    field.iter().position(|&b| b == 0).map_or(field, |n| &field[..n])
}

/// The header's checksum field against the sum of its bytes (with the field counted as
/// spaces); old archivers summed signed bytes, so either sum is accepted.
fn check_checksum(block: &[u8; BLOCK]) -> Result<(), String> {
    let recorded = parse_number(&block[148..156]).map_err(|p| format!("the checksum field {p}"))?;
    let field = 148..156;
    let (mut unsigned, mut signed) = (0u64, 0i64);
    for (i, &b) in block.iter().enumerate() {
        let b = if field.contains(&i) { b' ' } else { b };
        unsigned += u64::from(b);
        signed += i64::from(b as i8);
    }
    if recorded == unsigned || i64::try_from(recorded).is_ok_and(|r| r == signed) {
        Ok(())
    } else {
        Err(format!("bad header checksum (recorded {recorded}, computed {unsigned})"))
    }
}

/// A numeric header field: octal text (padded with spaces or NULs), or GNU base-256
/// when the top bit of the first byte is set. Negative numbers are refused.
fn parse_number(field: &[u8]) -> Result<u64, String> {
    match field.first() {
        Some(&first) if first & 0x80 != 0 => {
            if first & 0x40 != 0 {
                return Err("is negative".to_owned());
            }
            let mut value: u64 = u64::from(first & 0x3f);
            for &b in &field[1..] {
                value = value
                    .checked_mul(256)
                    .map(|v| v | u64::from(b))
                    .filter(|_| value >> 56 == 0)
                    .ok_or("does not fit in 64 bits")?;
            }
            Ok(value)
        }
        _ => {
            let text = field.iter().skip_while(|&&b| b == b' ' || b == 0);
            let mut value: u64 = 0;
            let mut digits = text.take_while(|&&b| b != b' ' && b != 0);
            digits.try_for_each(|&b| {
                if !(b'0'..=b'7').contains(&b) {
                    return Err(format!("is not an octal number ({:?})", String::from_utf8_lossy(cstr(field))));
                }
                value = value.checked_mul(8).map(|v| v + u64::from(b - b'0')).ok_or("does not fit in 64 bits")?;
                Ok(())
            })?;
            Ok(value)
        }
    }
}

/// A PAX record's key and value.
type PaxRecord<'a> = (&'a [u8], &'a [u8]);

/// The records of a PAX extended header: `"%d %s=%s\n"`, the length counting the whole
/// record.
fn pax_records(mut data: &[u8], offset: u64) -> Result<Vec<PaxRecord<'_>>, TarError> {
    let bad = |what: &str| TarError { offset, problem: format!("a PAX extended header {what}") };
    let mut records = Vec::new();
    // Some writers pad the header with NULs.
    while !data.is_empty() && data[0] != 0 {
        let space = data.iter().position(|&b| b == b' ').ok_or_else(|| bad("has a record without a length"))?;
        let length = std::str::from_utf8(&data[..space])
            .ok()
            .and_then(|s| s.parse::<usize>().ok())
            .filter(|&n| n > space + 1 && n <= data.len())
            .ok_or_else(|| bad("has a record with a bad length"))?;
        let record = &data[space + 1..length];
        let record = record.strip_suffix(b"\n").ok_or_else(|| bad("has a record without its newline"))?;
        let equals = record.iter().position(|&b| b == b'=').ok_or_else(|| bad("has a record without '='"))?;
        records.push((&record[..equals], &record[equals + 1..]));
        data = &data[length..];
    }
    Ok(records)
}

/// A PAX time (`1700000000.123`, possibly negative): its whole seconds.
fn pax_time(value: &[u8]) -> Option<i64> {
    let text = std::str::from_utf8(value).ok()?;
    let whole = text.split('.').next()?;
    whole.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records what it sees; optionally collects data of entries named `want`.
    #[derive(Default)]
    struct Recorder {
        headers: Vec<Header>,
        want: Option<Vec<u8>>,
        data: Vec<u8>,
        ends: usize,
        stop_after: Option<usize>,
    }

    impl Visitor for Recorder {
        fn entry(&mut self, header: Header) -> Want {
            let want = self.want.as_deref() == Some(&header.path[..]);
            self.headers.push(header);
            if self.stop_after == Some(self.headers.len()) {
                return Want::Stop;
            }
            if want {
                Want::Data
            } else {
                Want::Skip
            }
        }
        fn data(&mut self, bytes: &[u8], end: bool) -> ControlFlow<()> {
            self.data.extend_from_slice(bytes);
            self.ends += usize::from(end);
            ControlFlow::Continue(())
        }
    }

    fn header(name: &[u8], kind: tar::EntryType, size: u64) -> tar::Header {
        let mut h = tar::Header::new_ustar();
        h.set_path(std::str::from_utf8(name).unwrap()).unwrap();
        h.set_entry_type(kind);
        h.set_size(size);
        h.set_mode(0o644);
        h.set_mtime(1_700_000_000);
        h.set_cksum();
        h
    }

    /// An archive exercising every extension: PAX and GNU long names and links, a
    /// prefix, links, devices, a fifo, a base-256 size, empty files, and data.
    fn sample() -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        let long = format!("{}/{}", "d".repeat(80), "f".repeat(120));
        b.append_data(&mut header(b"a.txt", tar::EntryType::Regular, 5), "a.txt", &b"hello"[..]).unwrap();
        // `tar`'s append_data writes a GNU `L` record for names over 100 bytes.
        let mut h = tar::Header::new_gnu();
        h.set_size(3);
        h.set_mode(0o755);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, &long, &b"xyz"[..]).unwrap();
        // A PAX path and linkpath for a symlink.
        let pax_name = format!("pax/{}", "p".repeat(150));
        let pax_link = format!("target/{}", "t".repeat(150));
        b.append_pax_extensions([("path", pax_name.as_bytes()), ("linkpath", pax_link.as_bytes())]).unwrap();
        b.append(&header(b"ignored", tar::EntryType::Symlink, 0), &[][..]).unwrap();
        // A GNU long link on a hard link.
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Link);
        h.set_size(0);
        b.append_link(&mut h, "hard", format!("l/{}", "k".repeat(120))).unwrap();
        let mut h = header(b"dev/null", tar::EntryType::Char, 0);
        h.set_device_major(1).unwrap();
        h.set_device_minor(3).unwrap();
        h.set_cksum();
        b.append(&h, &[][..]).unwrap();
        b.append(&header(b"fifo", tar::EntryType::Fifo, 0), &[][..]).unwrap();
        b.append(&header(b"dir/", tar::EntryType::Directory, 0), &[][..]).unwrap();
        b.append(&header(b"empty", tar::EntryType::Regular, 0), &[][..]).unwrap();
        // ustar prefix: a 130-byte path split into prefix and name.
        let split = format!("{}/{}", "q".repeat(60), "r".repeat(69));
        let mut h = tar::Header::new_ustar();
        h.set_path(&split).unwrap();
        h.set_size(2);
        h.set_cksum();
        b.append(&h, &b"ok"[..]).unwrap();
        // Base-256 size (tar writes it past 8 GiB; force it here).
        let mut h = header(b"big256", tar::EntryType::Regular, 0);
        h.as_old_mut().size = [0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4];
        h.set_cksum();
        b.append(&h, &b"four"[..]).unwrap();
        b.into_inner().unwrap()
    }

    fn scan(archive: &[u8], chunks: impl Iterator<Item = usize>, want: Option<&[u8]>) -> (Recorder, Outcome) {
        let mut scanner = Scanner::new(Recorder { want: want.map(<[u8]>::to_vec), ..Recorder::default() });
        let mut rest = archive;
        for n in chunks {
            if rest.is_empty() {
                break;
            }
            let n = n.clamp(1, rest.len());
            scanner.feed(&rest[..n]);
            rest = &rest[n..];
        }
        scanner.feed(rest);
        scanner.finish()
    }

    fn expected_names() -> Vec<Vec<u8>> {
        vec![
            b"a.txt".to_vec(),
            format!("{}/{}", "d".repeat(80), "f".repeat(120)).into_bytes(),
            format!("pax/{}", "p".repeat(150)).into_bytes(),
            b"hard".to_vec(),
            b"dev/null".to_vec(),
            b"fifo".to_vec(),
            b"dir/".to_vec(),
            b"empty".to_vec(),
            format!("{}/{}", "q".repeat(60), "r".repeat(69)).into_bytes(),
            b"big256".to_vec(),
        ]
    }

    #[test]
    fn reading_from_an_entrys_offset_meets_that_entry_whole() {
        let archive = sample();
        let (r, _) = scan(&archive, std::iter::empty(), None);
        // Offsets rise, and the GNU `L` and PAX `x` records count as their entry's start.
        assert_eq!(r.headers[0].offset, 0);
        assert!(r.headers.windows(2).all(|w| w[0].offset < w[1].offset));
        assert!(r.headers.iter().all(|h| h.data_offset >= h.offset + 512 && h.data_offset % 512 == 0));
        assert_eq!(r.headers[1].data_offset, r.headers[1].offset + 3 * 512, "a GNU L record and its name");
        let a = r.headers[0].data_offset as usize;
        assert_eq!(&archive[a..a + 5], b"hello");
        for (i, h) in r.headers.iter().enumerate() {
            let mut scanner = Scanner::at(Recorder::default(), h.offset);
            scanner.feed(&archive[h.offset as usize..]);
            let (again, outcome) = scanner.finish();
            assert_eq!(outcome, Outcome::End);
            assert_eq!(again.headers[0], *h, "entry {i}");
            assert_eq!(again.headers.len(), r.headers.len() - i);
        }
    }

    #[test]
    fn whole_archive_in_one_write() {
        let (r, outcome) = scan(&sample(), std::iter::empty(), None);
        assert_eq!(outcome, Outcome::End);
        let names: Vec<_> = r.headers.iter().map(|h| h.path.clone()).collect();
        assert_eq!(names, expected_names());
        let h = &r.headers;
        assert_eq!((h[0].kind, h[0].size, h[0].mode, h[0].mtime), (TypeFlag::File, 5, 0o644, 1_700_000_000));
        assert_eq!((h[1].size, h[1].mode), (3, 0o755));
        assert_eq!(h[2].kind, TypeFlag::Symlink);
        assert_eq!(h[2].link, format!("target/{}", "t".repeat(150)).into_bytes());
        assert_eq!(h[3].kind, TypeFlag::HardLink);
        assert_eq!(h[3].link, format!("l/{}", "k".repeat(120)).into_bytes());
        assert_eq!((h[4].kind, h[4].dev_major, h[4].dev_minor), (TypeFlag::CharDevice, 1, 3));
        assert_eq!(h[5].kind, TypeFlag::Fifo);
        assert_eq!(h[6].kind, TypeFlag::Dir);
        assert_eq!(h[7].size, 0);
        assert_eq!(h[9].size, 4);
    }

    #[test]
    fn byte_by_byte_and_random_chunks_give_the_same_entries_and_data() {
        let archive = sample();
        let (whole, _) = scan(&archive, std::iter::empty(), Some(b"big256"));
        assert_eq!(whole.data, b"four");
        let byte_by_byte = scan(&archive, std::iter::repeat(1), Some(b"big256"));
        assert_eq!(byte_by_byte.1, Outcome::End);
        assert_eq!(byte_by_byte.0.headers, whole.headers);
        assert_eq!(byte_by_byte.0.data, b"four");
        assert_eq!(byte_by_byte.0.ends, 1);
        // xorshift chunk sizes from 1 to 1500, many seeds: headers split everywhere.
        for seed in 1..200u64 {
            let mut state = seed;
            let sizes = std::iter::from_fn(move || {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                Some((state % 1500) as usize + 1)
            });
            let (r, outcome) = scan(&archive, sizes, Some(b"a.txt"));
            assert_eq!(outcome, Outcome::End, "seed {seed}");
            assert_eq!(r.headers, whole.headers, "seed {seed}");
            assert_eq!(r.data, b"hello", "seed {seed}");
        }
    }

    #[test]
    fn empty_file_data_is_delivered_as_one_empty_end() {
        let (r, _) = scan(&sample(), std::iter::empty(), Some(b"empty"));
        assert_eq!((r.data.len(), r.ends), (0, 1));
    }

    #[test]
    fn a_stop_stops() {
        let mut scanner = Scanner::new(Recorder { stop_after: Some(2), ..Recorder::default() });
        scanner.feed(&sample());
        assert!(scanner.is_done());
        let (r, outcome) = scanner.finish();
        assert_eq!((r.headers.len(), outcome), (2, Outcome::Stopped));
    }

    #[test]
    fn truncation_is_reported_where_it_happens() {
        let archive = sample();
        // Inside the first header.
        let (_, outcome) = scan(&archive[..100], std::iter::empty(), None);
        assert_eq!(outcome, Outcome::Truncated("a header, at byte 0".into()));
        // Inside the first entry's data.
        let (r, outcome) = scan(&archive[..514], std::iter::empty(), None);
        assert_eq!(r.headers.len(), 1);
        assert_eq!(outcome, Outcome::Truncated("the data of entry 1 (3 bytes missing)".into()));
        // Between entries, without the end marker: accepted.
        let (r, outcome) = scan(&archive[..1024], std::iter::empty(), None);
        assert_eq!((r.headers.len(), outcome), (1, Outcome::Eof));
        // Nothing at all.
        assert_eq!(scan(&[], std::iter::empty(), None).1, Outcome::Eof);
    }

    #[test]
    fn bad_checksums_and_numbers_fail_with_their_offset() {
        let mut archive = sample();
        archive[1024 + 10] ^= 0x55; // the second header's name
        let (r, outcome) = scan(&archive, std::iter::empty(), None);
        assert_eq!(r.headers.len(), 1);
        let Outcome::Failed(e) = outcome else { panic!("{outcome:?}") };
        assert_eq!(e.offset, 1024);
        assert!(e.to_string().starts_with("bad header checksum"), "{e}");

        // A size field that is not octal, with a valid checksum.
        let mut h = header(b"x", tar::EntryType::Regular, 0);
        h.as_old_mut().size = *b"12345678x00\0";
        h.set_cksum();
        let (_, outcome) = scan(h.as_bytes(), std::iter::empty(), None);
        assert!(matches!(outcome, Outcome::Failed(ref e) if e.problem.contains("size field")), "{outcome:?}");

        // Garbage is not a tar.
        let (_, outcome) = scan(&[0x41; 2048], std::iter::empty(), None);
        assert!(matches!(outcome, Outcome::Failed(ref e) if e.offset == 0), "{outcome:?}");
    }

    #[test]
    fn absurd_extension_sizes_are_refused_and_absurd_data_sizes_end_as_truncated() {
        let mut h = header(b"././@LongLink", tar::EntryType::GNULongName, 0);
        h.set_size(1 << 40);
        h.set_cksum();
        let (_, outcome) = scan(h.as_bytes(), std::iter::empty(), None);
        assert!(matches!(outcome, Outcome::Failed(ref e) if e.problem.contains("extended header claims")));

        let mut h = header(b"huge", tar::EntryType::Regular, 0);
        h.as_old_mut().size = [0xbf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        h.set_cksum();
        let (_, outcome) = scan(h.as_bytes(), std::iter::empty(), None);
        assert!(matches!(outcome, Outcome::Failed(ref e) if e.problem.contains("64 bits")), "{outcome:?}");

        let mut h = header(b"neg", tar::EntryType::Regular, 0);
        h.as_old_mut().size = [0xff; 12];
        h.set_cksum();
        let (_, outcome) = scan(h.as_bytes(), std::iter::empty(), None);
        assert!(matches!(outcome, Outcome::Failed(ref e) if e.problem.contains("negative")), "{outcome:?}");

        let mut archive = header(b"claims-a-lot", tar::EntryType::Regular, 1 << 50).as_bytes().to_vec();
        archive.extend_from_slice(&[7; 5000]);
        let (r, outcome) = scan(&archive, std::iter::empty(), None);
        assert_eq!(r.headers[0].size, 1 << 50);
        assert!(matches!(outcome, Outcome::Truncated(_)), "{outcome:?}");
    }

    #[test]
    fn pax_globals_apply_to_later_entries_and_locals_win() {
        let mut b = tar::Builder::new(Vec::new());
        let mut g = tar::Header::new_ustar();
        let records = b"15 uid=4242424\n";
        g.set_entry_type(tar::EntryType::XGlobalHeader);
        g.set_size(records.len() as u64);
        g.set_cksum();
        b.append(&g, &records[..]).unwrap();
        b.append(&header(b"one", tar::EntryType::Regular, 0), &[][..]).unwrap();
        b.append_pax_extensions([("uid", &b"7"[..]), ("mtime", &b"1234.5"[..])]).unwrap();
        b.append(&header(b"two", tar::EntryType::Regular, 0), &[][..]).unwrap();
        let (r, outcome) = scan(&b.into_inner().unwrap(), std::iter::repeat(7), None);
        assert_eq!(outcome, Outcome::End);
        assert_eq!(r.headers[0].uid, 4_242_424);
        assert_eq!((r.headers[1].uid, r.headers[1].mtime), (7, 1234));
    }

    #[test]
    fn malformed_pax_records_fail() {
        for records in [&b"5 a=b\n"[..], b"99 path=x\n", b"x path=y\n", b"11 pathxyz\n", b"10 size=z\n"] {
            let mut b = tar::Builder::new(Vec::new());
            let mut h = tar::Header::new_ustar();
            h.set_entry_type(tar::EntryType::XHeader);
            h.set_size(records.len() as u64);
            h.set_cksum();
            b.append(&h, records).unwrap();
            let (_, outcome) = scan(&b.into_inner().unwrap(), std::iter::empty(), None);
            assert!(matches!(outcome, Outcome::Failed(_)), "{:?}: {outcome:?}", String::from_utf8_lossy(records));
        }
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_number(b"0000644\0"), Ok(0o644));
        assert_eq!(parse_number(b"  755 \0\0"), Ok(0o755));
        assert_eq!(parse_number(b"\0\0\0\0"), Ok(0));
        assert_eq!(parse_number(&[0x80, 0, 0, 1, 0]), Ok(256));
        assert!(parse_number(b"9").is_err());
        assert!(parse_number(&[0x80, 1, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
        assert_eq!(parse_number(&[0x80, 0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), Ok(u64::MAX));
    }
}
