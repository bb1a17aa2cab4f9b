//! Reading the files a user names (`--config`, `--data`): regular files only, and at most
//! a documented number of bytes, so that a FIFO, a device (`/dev/zero`) or a huge file
//! can neither block the program nor exhaust its memory.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::path::Path;

/// The most bytes `--config` reads: 1 MiB (a config file is a few hundred bytes).
pub const CONFIG_LIMIT: u64 = 1 << 20;

/// The most bytes `--data` reads: 16 MiB (the shipped digits.csv is 265 KB). The rows
/// of a file this large take at most about 2 bytes of memory per byte read.
pub const DATA_LIMIT: u64 = 16 << 20;

/// Why a file was not read.
#[derive(Debug)]
pub enum ReadError {
    /// The system refused (missing file, no permission, ...).
    Io(io::Error),
    /// A directory, FIFO, socket or device.
    NotRegular,
    /// More than the limit, in bytes.
    TooLarge(u64),
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Io(e) => write!(f, "{e}"),
            ReadError::NotRegular => f.write_str("not a regular file"),
            ReadError::TooLarge(limit) => write!(f, "larger than {limit} bytes"),
        }
    }
}

/// The contents of the regular file at `path` (symlinks followed), if it holds at most
/// `limit` bytes.
///
/// The file is opened without blocking (`O_NONBLOCK`: opening a FIFO for reading would
/// otherwise wait for a writer), its type is checked on the open file itself (no window
/// between the check and the read), and at most `limit + 1` bytes are read, so a file
/// that grows while it is read is refused too.
pub fn read_limited(path: &Path, limit: u64) -> Result<Vec<u8>, ReadError> {
    let file = open(path).map_err(ReadError::Io)?;
    if !file.metadata().map_err(ReadError::Io)?.is_file() {
        return Err(ReadError::NotRegular);
    }
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge(limit));
    }
    Ok(bytes)
}

fn open(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    options.open(path)
}
