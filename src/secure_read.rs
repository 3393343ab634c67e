//! Reading secrets from a file descriptor or a file without leaving copies.
//!
//! `std::io::stdin()` keeps what it read in a process-wide 8 KiB buffer that
//! is never wiped, `BufReader` does the same, and a `Vec` or `String` that
//! grows moves its bytes and frees the old block unwiped. Everything here
//! instead reads with plain `read(2)` calls into one buffer allocated up
//! front at its final size, held in [`Zeroizing`], so the only copy of the
//! secret is the one the caller gets, and it is wiped on drop (with the
//! buffer's whole capacity).
//!
//! [`line()`] reads byte by byte and stops at the line break, so what follows
//! on the descriptor stays there for the next reader (the master password on
//! the first line of stdin, a field value after it).

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::path::Path;

use zeroize::Zeroizing;

use crate::engine::SecretString;

/// Most bytes a secret read from stdin or a file may have (1 MiB).
pub const MAX_SECRET: usize = 1 << 20;

fn read_some(fd: BorrowedFd<'_>, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match rustix::io::read(fd, &mut *buf) {
            Ok(n) => return Ok(n),
            Err(rustix::io::Errno::INTR) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

fn too_long(limit: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("longer than {limit} bytes"),
    )
}

/// Everything up to end of file on `fd`, at most `limit` bytes (more is an
/// `InvalidData` error).
///
/// # Errors
/// Read errors, or a value over `limit`.
pub fn to_end(fd: impl AsFd, limit: usize) -> io::Result<Zeroizing<Vec<u8>>> {
    let fd = fd.as_fd();
    let mut buf = Zeroizing::new(vec![0u8; limit]);
    let mut len = 0;
    loop {
        if len == limit {
            let mut probe = Zeroizing::new([0u8; 1]);
            if read_some(fd, probe.as_mut())? > 0 {
                return Err(too_long(limit));
            }
            break;
        }
        match read_some(fd, &mut buf[len..])? {
            0 => break,
            n => len += n,
        }
    }
    buf.truncate(len);
    Ok(buf)
}

/// One line from `fd` without its `\n` (nor a `\r` before it), at most
/// `limit` bytes; reads nothing past the line break. `None` at end of file
/// before any byte.
///
/// # Errors
/// Read errors, or a line over `limit`.
pub fn line(fd: impl AsFd, limit: usize) -> io::Result<Option<Zeroizing<Vec<u8>>>> {
    let fd = fd.as_fd();
    let mut buf = Zeroizing::new(vec![0u8; limit]);
    let mut len = 0;
    let mut any = false;
    loop {
        let mut byte = Zeroizing::new([0u8; 1]);
        if read_some(fd, byte.as_mut())? == 0 {
            break;
        }
        any = true;
        if byte[0] == b'\n' {
            break;
        }
        if len == limit {
            return Err(too_long(limit));
        }
        buf[len] = byte[0];
        len += 1;
    }
    if !any {
        return Ok(None);
    }
    if len > 0 && buf[len - 1] == b'\r' {
        len -= 1;
    }
    buf.truncate(len);
    Ok(Some(buf))
}

/// The contents of the file at `path`, at most `limit` bytes.
///
/// # Errors
/// Open and read errors, or a file over `limit`.
pub fn file(path: &Path, limit: usize) -> io::Result<Zeroizing<Vec<u8>>> {
    to_end(std::fs::File::open(path)?, limit)
}

/// The bytes as a [`SecretString`] (one exact-size copy; `bytes` is wiped
/// when dropped).
///
/// # Errors
/// Bytes that are not UTF-8.
pub fn secret_string(bytes: &[u8]) -> Result<SecretString, std::str::Utf8Error> {
    std::str::from_utf8(bytes).map(SecretString::from)
}

/// The bytes as a [`Zeroizing`] `String` of exactly their length.
///
/// # Errors
/// Bytes that are not UTF-8.
pub fn zeroizing_string(bytes: &[u8]) -> Result<Zeroizing<String>, std::str::Utf8Error> {
    let text = std::str::from_utf8(bytes)?;
    let mut out = Zeroizing::new(String::with_capacity(text.len()));
    out.push_str(text);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn pipe_with(data: &[u8]) -> std::io::PipeReader {
        let (r, mut w) = std::io::pipe().expect("pipe");
        w.write_all(data).expect("write");
        drop(w);
        r
    }

    #[test]
    fn lines_stop_at_the_break_and_leave_the_rest() {
        let fd = pipe_with(b"first pw\r\nsecond\nthird");
        assert_eq!(
            line(&fd, 64).expect("read").expect("a line").as_slice(),
            b"first pw"
        );
        assert_eq!(
            line(&fd, 64).expect("read").expect("a line").as_slice(),
            b"second"
        );
        assert_eq!(to_end(&fd, 64).expect("read").as_slice(), b"third");
        assert!(line(&fd, 64).expect("read").is_none(), "end of file");
        let fd = pipe_with(b"\n");
        assert_eq!(
            line(&fd, 64)
                .expect("read")
                .expect("an empty line")
                .as_slice(),
            b""
        );
    }

    #[test]
    fn values_over_the_limit_are_refused() {
        let fd = pipe_with(b"12345");
        assert!(to_end(&fd, 4).is_err());
        let fd = pipe_with(b"1234");
        assert_eq!(
            to_end(&fd, 4).expect("exactly the limit").as_slice(),
            b"1234"
        );
        let fd = pipe_with(b"12345\n");
        assert!(line(&fd, 4).is_err());
    }

    #[test]
    fn the_buffer_is_allocated_once_at_its_final_size() {
        let fd = pipe_with(&[b'x'; 3000]);
        let out = to_end(&fd, 4096).expect("read");
        assert_eq!(out.len(), 3000);
        assert_eq!(out.capacity(), 4096, "never grown, so never moved");
        let s = zeroizing_string(&out).expect("utf-8");
        assert_eq!(s.capacity(), s.len());
        assert!(secret_string(&[0xff]).is_err());
    }

    #[test]
    fn files_are_read_whole() {
        let tmp = tempfile::NamedTempFile::new().expect("tmp");
        std::fs::write(tmp.path(), b"from a file\n").expect("write");
        assert_eq!(
            file(tmp.path(), 64).expect("read").as_slice(),
            b"from a file\n"
        );
        assert!(file(Path::new("/nonexistent/x"), 64).is_err());
    }
}
