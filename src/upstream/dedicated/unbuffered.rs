//! TLS for a blob connection through rustls's unbuffered API: the socket is read straight
//! into one large buffer of ours, rustls decrypts each record where it lies, and the
//! plaintext is appended to the buffer that body frames are cut from.
//!
//! rustls's buffered connection (behind hyper-rustls) reads at most ~16 KiB per system
//! call, decrypts in a buffer of its own, moves partial records to that buffer's front
//! and is then copied out of again into hyper's read buffer (BENCHMARKS.md, "The TLS
//! path"). Here a read takes as much as the socket holds (up to the connection's
//! [`ReadBufferLoan`](super::ReadBufferLoan) size) and there is one copy of the
//! plaintext left in user space: rustls 0.23 still hands each decrypted record over
//! in a `Vec` of its own (`ReadTraffic::next_record`), from which it is appended to the
//! frame buffer.
//!
//! Certificates are verified by rustls with the `ClientConfig` given, exactly as on the
//! buffered path; the server name is the URL's host (no SNI for an IP address).

use std::io;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use bytes::{Buf, BytesMut};
use rustls::client::UnbufferedClientConnection;
use rustls::pki_types::ServerName;
use rustls::unbuffered::{ConnectionState, EncodeError, EncryptError, UnbufferedStatus};
use rustls::ClientConfig;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::error::BoxError;

/// The largest TLS record on the wire (RFC 8446 §5.2: 2^14 + 256 bytes of ciphertext,
/// and the 5-byte header): the room left before the socket is read.
const RECORD_MAX: usize = 5 + (1 << 14) + 256;

/// The most plaintext one TLS record holds (RFC 8446 §5.1).
pub const RECORD_PLAIN_MAX: usize = 1 << 14;

/// What decrypting the records at hand came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decrypted {
    /// Every whole record was decrypted (perhaps none); more must be read.
    NeedBytes,
    /// The plaintext buffer has no room for another record; records may be left.
    Full,
    /// The server closed TLS cleanly (close_notify): nothing more will come.
    Closed,
}

/// A client TLS session over TCP, after its handshake.
pub struct Session {
    tcp: TcpStream,
    conn: UnbufferedClientConnection,
    /// Ciphertext read and not yet decrypted.
    incoming: BytesMut,
    /// TLS bytes to send (handshake, alerts, key updates).
    outgoing: Vec<u8>,
    read_size: usize,
    peer_closed: bool,
}

impl Session {
    /// The server name rustls checks the certificate against, from a URL's host.
    pub fn server_name(host: &str) -> Result<ServerName<'static>, BoxError> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        Ok(ServerName::try_from(host.to_owned())?)
    }

    /// Completes a handshake on `tcp` and sends `request` (an HTTP request's bytes)
    /// encrypted; `read_size` is how much a read of the socket may take. Offers only
    /// HTTP/1.1 in ALPN, as the buffered connector for blobs does.
    pub async fn connect(
        tcp: TcpStream,
        config: Arc<ClientConfig>,
        name: ServerName<'static>,
        read_size: usize,
        request: &[u8],
    ) -> Result<Session, BoxError> {
        let conn = UnbufferedClientConnection::new_with_alpn(config, name, vec![b"http/1.1".to_vec()])?;
        let mut session = Session {
            tcp,
            conn,
            incoming: BytesMut::with_capacity(read_size.max(2 * RECORD_MAX)),
            outgoing: Vec::new(),
            read_size: read_size.max(2 * RECORD_MAX),
            peer_closed: false,
        };
        session.handshake_and_send(request).await?;
        Ok(session)
    }

    async fn handshake_and_send(&mut self, request: &[u8]) -> Result<(), BoxError> {
        enum Next {
            Go,
            Transmit,
            Read,
            Sent,
        }
        loop {
            let UnbufferedStatus { discard, state } = self.conn.process_tls_records(&mut self.incoming);
            let next = match state? {
                ConnectionState::EncodeTlsData(mut e) => {
                    encode(&mut self.outgoing, |buf| e.encode(buf))?;
                    Next::Go
                }
                ConnectionState::TransmitTlsData(t) => {
                    t.done();
                    Next::Transmit
                }
                ConnectionState::BlockedHandshake => Next::Read,
                ConnectionState::WriteTraffic(mut w) => {
                    encrypt(&mut self.outgoing, |buf| w.encrypt(request, buf))?;
                    Next::Sent
                }
                ConnectionState::PeerClosed | ConnectionState::Closed => {
                    return Err(
                        io::Error::new(io::ErrorKind::UnexpectedEof, "the server closed TLS in its handshake").into()
                    )
                }
                other => return Err(format!("unexpected TLS state in the handshake: {other:?}").into()),
            };
            self.incoming.advance(discard);
            match next {
                Next::Go => {}
                Next::Transmit => self.flush().await?,
                Next::Read => {
                    self.reserve();
                    if self.tcp.read_buf(&mut self.incoming).await? == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the server closed in the TLS handshake",
                        )
                        .into());
                    }
                }
                Next::Sent => return Ok(self.flush().await?),
            }
        }
    }

    async fn flush(&mut self) -> io::Result<()> {
        self.tcp.write_all(&self.outgoing).await?;
        self.outgoing.clear();
        Ok(())
    }

    /// Makes room for at least one more record in `incoming`, reusing its buffer when
    /// only a partial record is left in it.
    fn reserve(&mut self) {
        if self.incoming.capacity() - self.incoming.len() < RECORD_MAX {
            self.incoming.reserve(self.read_size - self.incoming.len().min(self.read_size / 2));
        }
    }

    /// Decrypts the whole records read so far onto the end of `plain`, while it has room
    /// for one more without growing (growing would copy it all, and double it).
    pub fn decrypt(&mut self, plain: &mut BytesMut) -> Result<Decrypted, BoxError> {
        enum Next {
            Go,
            Stop(Decrypted),
        }
        loop {
            if self.peer_closed {
                return Ok(Decrypted::Closed);
            }
            if plain.capacity() - plain.len() < RECORD_PLAIN_MAX {
                return Ok(Decrypted::Full);
            }
            let UnbufferedStatus { mut discard, state } = self.conn.process_tls_records(&mut self.incoming);
            let next = match state? {
                ConnectionState::ReadTraffic(mut r) => {
                    while let Some(record) = r.next_record() {
                        let record = record?;
                        discard += record.discard;
                        plain.extend_from_slice(record.payload);
                    }
                    Next::Go
                }
                // Established and no whole record left.
                ConnectionState::WriteTraffic(_) | ConnectionState::BlockedHandshake => {
                    Next::Stop(Decrypted::NeedBytes)
                }
                ConnectionState::PeerClosed | ConnectionState::Closed => {
                    self.peer_closed = true;
                    Next::Go
                }
                // A key update's answer or an alert: sent before the next read.
                ConnectionState::EncodeTlsData(mut e) => {
                    encode(&mut self.outgoing, |buf| e.encode(buf))?;
                    Next::Go
                }
                ConnectionState::TransmitTlsData(t) => {
                    t.done();
                    Next::Go
                }
                other => return Err(format!("unexpected TLS state: {other:?}").into()),
            };
            self.incoming.advance(discard);
            if let Next::Stop(d) = next {
                return Ok(d);
            }
        }
    }

    /// Reads the socket once into the ciphertext buffer, after sending anything TLS
    /// owes the server; `Ok(0)` at the connection's end.
    pub fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        while !self.outgoing.is_empty() {
            ready!(self.tcp.poll_write_ready(cx))?;
            match self.tcp.try_write(&self.outgoing) {
                Ok(n) => drop(self.outgoing.drain(..n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
        self.reserve();
        loop {
            ready!(self.tcp.poll_read_ready(cx))?;
            match self.tcp.try_read_buf(&mut self.incoming) {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    /// The TCP connection, for its peer's address.
    pub fn tcp(&self) -> &TcpStream {
        &self.tcp
    }
}

/// Appends what `write` puts in the buffer it is given to `out`, growing the buffer to
/// the size rustls asks for (`needs`) until it fits.
fn write_grown<E: Into<BoxError>>(
    out: &mut Vec<u8>,
    mut write: impl FnMut(&mut [u8]) -> Result<usize, E>,
    needs: impl Fn(&E) -> Option<usize>,
) -> Result<(), BoxError> {
    let start = out.len();
    let mut room = 4096;
    loop {
        out.resize(start + room, 0);
        match write(&mut out[start..]) {
            Ok(n) => {
                out.truncate(start + n);
                return Ok(());
            }
            Err(e) => match needs(&e) {
                Some(required) => room = required,
                None => {
                    out.truncate(start);
                    return Err(e.into());
                }
            },
        }
    }
}

/// Appends the TLS bytes `encode` writes (handshake, alerts) to `out`.
fn encode(out: &mut Vec<u8>, encode: impl FnMut(&mut [u8]) -> Result<usize, EncodeError>) -> Result<(), BoxError> {
    write_grown(out, encode, |e| match e {
        EncodeError::InsufficientSize(e) => Some(e.required_size),
        _ => None,
    })
}

/// Appends the application data `encrypt` writes to `out`.
fn encrypt(out: &mut Vec<u8>, encrypt: impl FnMut(&mut [u8]) -> Result<usize, EncryptError>) -> Result<(), BoxError> {
    write_grown(out, encrypt, |e| match e {
        EncryptError::InsufficientSize(e) => Some(e.required_size),
        _ => None,
    })
}
