//! Power-safe storage of gradstep checkpoints in a flash region: two slots, a sequence
//! number and a checksum, so that a reset at any point of a write leaves the last good
//! checkpoint readable.
//!
//! ```
//! use gradstep::checkpoint;
//! use gradstep::{Rule, Sgd, StepCount};
//! use gradstep_flash_store::{RamFlash, Store};
//!
//! // Stands in for a flash region: 2 slots of 2 erase units of 256 bytes.
//! let mut region = [0u8; 1024];
//! let mut store = Store::new(RamFlash::<256, 4>::new(&mut region))?;
//! assert!(store.latest().is_none()); // nothing saved yet
//!
//! let sgd = Sgd { lr: 0.1, momentum: 0.9, ..Sgd::default() };
//! let (mut params, mut buf, mut scalars) = ([1.0f32, 2.0], [0.0f32; 2], StepCount::default());
//! sgd.step(&mut scalars, &mut params, &[0.5, -0.5], &mut [&mut buf])?;
//! let mut bytes = [0u8; 128];
//! let len = checkpoint::encode(&sgd, &scalars, &[&buf], Some(&params), &mut bytes)?;
//! let seq = store.write(&bytes[..len])?;
//!
//! // After a reset: the newest record whose checksum and checkpoint header are valid.
//! let record = store.latest().expect("just written");
//! assert_eq!((record.seq, record.payload), (seq, &bytes[..len]));
//! let (mut buf2, mut params2) = ([0.0f32; 2], [0.0f32; 2]);
//! checkpoint::decode::<Sgd, f32>(record.payload, &mut [&mut buf2], Some(&mut params2))?;
//! assert_eq!((buf2, params2), (buf, params));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! ## Layout
//! The region is split into two slots of equal size, each a whole number of erase units.
//! A slot holds one record:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | magic `b"GSFS"` |
//! | 4 | 4 | sequence number `s`, `u32` little-endian |
//! | 8 | 4 | payload length `L`, `u32` little-endian |
//! | 12 | 4 | CRC-32C (Castagnoli) of bytes `0..12` and of the payload, `u32` little-endian |
//! | 16 | `L` | payload: one gradstep checkpoint ([`gradstep::checkpoint`]) |
//!
//! A slot is *valid* when its magic is right, `L` fits the slot, the CRC matches, and the
//! payload is a whole gradstep checkpoint of length `L` that decodes
//! ([`gradstep::checkpoint::inspect`]: its own CRC-32, structure and hyperparameters).
//! [`Store::write`] refuses any other payload ([`Error::NotACheckpoint`]), so it never
//! writes a record that would not restore, and a slot that holds one anyway (written by
//! an older build) is not valid, so the next write goes over it rather than over the
//! last checkpoint that restores. The *latest* record is the valid one with the higher sequence number
//! (compared as serial numbers, so the counter may wrap).
//!
//! ## Why a reset cannot lose the last good checkpoint
//! [`Store::write`] never touches the slot holding the latest valid record. It
//! 1. erases, in the other slot, the erase units the new record needs, starting with the
//!    one holding the header, so that slot stops being valid before anything else
//!    changes;
//! 2. programs the payload;
//! 3. programs the 16-byte header, with sequence number latest + 1, last: this is the
//!    commit. Until its last byte is programmed, the CRC does not match (or the magic is
//!    still erased), so the slot is invalid and [`Store::latest`] returns the old record.
//!
//! A torn erase or program leaves bits in any state in the slot being written; none of
//! them can make that slot valid except with the probability of a CRC-32C collision
//! (and a valid-looking gradstep header besides). `tests/power_loss.rs` cuts the power at
//! every program unit and every erase unit of a write, with several kinds of torn
//! results, and checks that the latest record is always the previous checkpoint or the
//! new one, byte for byte, and that it decodes.
//!
//! Flash is modelled as NOR flash ([`Flash`]): erasing sets a unit's bytes to `0xFF`,
//! programming can only clear bits, each program unit is programmed at most once per
//! erase. [`RamFlash`] implements those rules over a RAM buffer, for tests and for
//! emulators without a flash controller.

#![no_std]
#![deny(missing_docs)]
#![deny(unsafe_op_in_unsafe_fn)]

use core::fmt;

use gradstep::checkpoint;

/// The first four bytes of every record.
pub const MAGIC: [u8; 4] = *b"GSFS";

/// Length of a record's header, before the payload.
pub const HEADER_LEN: usize = 16;

/// The largest program unit [`Store`] supports: it must divide [`HEADER_LEN`].
pub const MAX_WRITE_SIZE: usize = HEADER_LEN;

static CRC32C: crc::Crc<u32, crc::Table<1>> =
    crc::Crc::<u32, crc::Table<1>>::new(&crc::CRC_32_ISCSI);

/// A memory-mapped NOR flash region (or anything that behaves like one).
///
/// Offsets are relative to the start of the region. [`Store`] erases whole erase units
/// (offsets multiples of `ERASE_SIZE`) and programs whole program units (offset and
/// length multiples of `WRITE_SIZE`), each at most once after it was erased.
pub trait Flash {
    /// Why an erase or a program failed (including a power loss, in simulations).
    type Error: fmt::Debug;
    /// Size of an erase unit (a flash page or sector) in bytes.
    const ERASE_SIZE: usize;
    /// Size of a program unit in bytes: a power of two, at most [`MAX_WRITE_SIZE`].
    const WRITE_SIZE: usize;
    /// The region's current contents (flash is read through the memory map).
    fn bytes(&self) -> &[u8];
    /// Erases the erase unit starting at `offset`: every byte becomes `0xFF`.
    fn erase(&mut self, offset: usize) -> Result<(), Self::Error>;
    /// Programs `data` at `offset`: each byte becomes `old & new` (bits only clear).
    fn program(&mut self, offset: usize, data: &[u8]) -> Result<(), Self::Error>;
}

/// Why [`Store::new`] or [`Store::write`] failed.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Error<E> {
    /// The flash reported an error; the latest valid record is still the previous one.
    Flash(E),
    /// The region cannot hold two slots, or its program unit is not a power of two that
    /// divides [`HEADER_LEN`], or its erase unit is not a multiple of the program unit.
    Geometry,
    /// The payload is longer than a slot can hold ([`Store::capacity`]).
    TooLarge {
        /// Payload length.
        len: usize,
        /// The most a slot holds.
        capacity: usize,
    },
    /// The payload is not a whole gradstep checkpoint of its own length that decodes
    /// (checksum, structure, hyperparameters), so it could not be restored.
    NotACheckpoint,
    /// The record read back after writing is not valid (the flash did not store what was
    /// programmed).
    Verify,
}

impl<E: fmt::Debug> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Flash(e) => write!(f, "flash error: {e:?}"),
            Error::Geometry => f.write_str("flash region too small or unsupported geometry"),
            Error::TooLarge { len, capacity } => {
                write!(
                    f,
                    "payload of {len} bytes exceeds the slot capacity {capacity}"
                )
            }
            Error::NotACheckpoint => f.write_str("payload is not a gradstep checkpoint"),
            Error::Verify => f.write_str("record read back after writing is not valid"),
        }
    }
}

impl<E: fmt::Debug> core::error::Error for Error<E> {}

/// A valid record, as read from its slot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Record<'a> {
    /// Which slot (0 or 1) holds it.
    pub slot: usize,
    /// Its sequence number.
    pub seq: u32,
    /// The gradstep checkpoint it holds, exactly as written.
    pub payload: &'a [u8],
}

/// Two-slot checkpoint storage over a [`Flash`] region.
#[derive(Debug)]
pub struct Store<F> {
    flash: F,
    slot_len: usize,
}

/// `a` is newer than `b` in serial-number arithmetic (RFC 1982), so the counter may wrap.
fn newer(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

fn record_crc(head: &[u8], payload: &[u8]) -> u32 {
    let mut digest = CRC32C.digest();
    digest.update(head);
    digest.update(payload);
    digest.finalize()
}

fn u32_at(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at + 4)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

/// The payload is a whole gradstep checkpoint of exactly its length that decodes
/// ([`checkpoint::inspect`]: its own checksum, structure and hyperparameters), not just
/// one whose header looks right.
fn is_checkpoint(payload: &[u8]) -> bool {
    matches!(checkpoint::inspect(payload), Ok((h, ..)) if h.len == payload.len() as u64)
}

impl<F: Flash> Store<F> {
    /// A store over the whole of `flash`, split into two slots. Reads nothing yet.
    pub fn new(flash: F) -> Result<Self, Error<F::Error>> {
        let (erase, write) = (F::ERASE_SIZE, F::WRITE_SIZE);
        let geometry_ok = write.is_power_of_two()
            && write <= MAX_WRITE_SIZE
            && erase >= write
            && erase.is_multiple_of(write);
        if !geometry_ok {
            return Err(Error::Geometry);
        }
        let slot_len = flash.bytes().len() / 2 / erase * erase;
        if slot_len <= HEADER_LEN {
            return Err(Error::Geometry);
        }
        Ok(Store { flash, slot_len })
    }

    /// The largest payload a slot holds.
    pub fn capacity(&self) -> usize {
        self.slot_len - HEADER_LEN
    }

    /// The flash region.
    pub fn flash(&self) -> &F {
        &self.flash
    }

    /// Gives the flash region back.
    pub fn into_inner(self) -> F {
        self.flash
    }

    /// The record in `slot` (0 or 1), if it is valid.
    pub fn read(&self, slot: usize) -> Option<Record<'_>> {
        if slot > 1 {
            return None;
        }
        let bytes = self.flash.bytes().get(slot * self.slot_len..)?;
        let bytes = bytes.get(..self.slot_len)?;
        if bytes.get(..4)? != MAGIC {
            return None;
        }
        let seq = u32_at(bytes, 4)?;
        let len = usize::try_from(u32_at(bytes, 8)?).ok()?;
        let stored_crc = u32_at(bytes, 12)?;
        let payload = bytes.get(HEADER_LEN..HEADER_LEN.checked_add(len)?)?;
        if record_crc(&bytes[..12], payload) != stored_crc || !is_checkpoint(payload) {
            return None;
        }
        Some(Record { slot, seq, payload })
    }

    /// The valid records, newest first: try the second if the first does not restore.
    pub fn records(&self) -> [Option<Record<'_>>; 2] {
        match (self.read(0), self.read(1)) {
            (Some(a), Some(b)) if newer(b.seq, a.seq) => [Some(b), Some(a)],
            (Some(a), b) => [Some(a), b],
            (None, b) => [b, None],
        }
    }

    /// The newest valid record, if any.
    pub fn latest(&self) -> Option<Record<'_>> {
        self.records()[0]
    }

    /// Writes `payload` (a gradstep checkpoint) as the new latest record, into the slot
    /// that does not hold the current latest one, and returns its sequence number.
    ///
    /// On `Err`, whatever happened to the flash, [`Store::latest`] returns the previous
    /// latest record (or, for [`Error::Verify`], possibly none if there was none).
    pub fn write(&mut self, payload: &[u8]) -> Result<u32, Error<F::Error>> {
        let capacity = self.capacity();
        if payload.len() > capacity {
            return Err(Error::TooLarge {
                len: payload.len(),
                capacity,
            });
        }
        if !is_checkpoint(payload) {
            return Err(Error::NotACheckpoint);
        }
        let (slot, seq) = match self.latest() {
            Some(r) => (1 - r.slot, r.seq.wrapping_add(1)),
            None => (0, 1),
        };
        let base = slot * self.slot_len;

        // 1. Erase what the record needs, header unit first.
        let end = HEADER_LEN + payload.len();
        let mut offset = 0;
        while offset < end {
            self.flash.erase(base + offset).map_err(Error::Flash)?;
            offset += F::ERASE_SIZE;
        }

        // 2. The payload: whole program units, then the tail padded with erased bytes.
        let w = F::WRITE_SIZE;
        let body = payload.len() / w * w;
        if body > 0 {
            self.flash
                .program(base + HEADER_LEN, &payload[..body])
                .map_err(Error::Flash)?;
        }
        if body < payload.len() {
            let mut tail = [0xFFu8; MAX_WRITE_SIZE];
            tail[..payload.len() - body].copy_from_slice(&payload[body..]);
            self.flash
                .program(base + HEADER_LEN + body, &tail[..w])
                .map_err(Error::Flash)?;
        }

        // 3. The header, last: the commit.
        let mut head = [0u8; HEADER_LEN];
        head[..4].copy_from_slice(&MAGIC);
        head[4..8].copy_from_slice(&seq.to_le_bytes());
        head[8..12].copy_from_slice(&(payload.len() as u32).to_le_bytes());
        let crc = record_crc(&head[..12], payload);
        head[12..].copy_from_slice(&crc.to_le_bytes());
        self.flash.program(base, &head).map_err(Error::Flash)?;

        match self.read(slot) {
            Some(r) if r.seq == seq && r.payload == payload => Ok(seq),
            _ => Err(Error::Verify),
        }
    }

    /// Erases the header unit of both slots: no record is valid afterwards.
    pub fn clear(&mut self) -> Result<(), Error<F::Error>> {
        for slot in 0..2 {
            self.flash
                .erase(slot * self.slot_len)
                .map_err(Error::Flash)?;
        }
        Ok(())
    }
}

/// Why a [`RamFlash`] operation was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RamFlashError {
    /// The range is outside the region.
    OutOfBounds,
    /// The offset or length is not a multiple of the erase or program unit.
    Misaligned,
}

/// A RAM buffer that behaves like NOR flash: erase sets `ERASE`-byte units to `0xFF`,
/// program clears bits (`old & new`) in `WRITE`-byte units. For tests, and for emulated
/// boards whose "flash" is RAM (QEMU's `mps2-an386`).
#[derive(Debug)]
pub struct RamFlash<'a, const ERASE: usize, const WRITE: usize> {
    mem: &'a mut [u8],
}

impl<'a, const ERASE: usize, const WRITE: usize> RamFlash<'a, ERASE, WRITE> {
    /// Wraps `mem`, keeping its contents (as flash keeps them across a reset).
    pub fn new(mem: &'a mut [u8]) -> Self {
        RamFlash { mem }
    }
}

impl<const ERASE: usize, const WRITE: usize> Flash for RamFlash<'_, ERASE, WRITE> {
    type Error = RamFlashError;
    const ERASE_SIZE: usize = ERASE;
    const WRITE_SIZE: usize = WRITE;

    fn bytes(&self) -> &[u8] {
        self.mem
    }

    fn erase(&mut self, offset: usize) -> Result<(), RamFlashError> {
        if !offset.is_multiple_of(ERASE) {
            return Err(RamFlashError::Misaligned);
        }
        let unit = offset
            .checked_add(ERASE)
            .and_then(|end| self.mem.get_mut(offset..end))
            .ok_or(RamFlashError::OutOfBounds)?;
        unit.fill(0xFF);
        Ok(())
    }

    fn program(&mut self, offset: usize, data: &[u8]) -> Result<(), RamFlashError> {
        if !offset.is_multiple_of(WRITE) || !data.len().is_multiple_of(WRITE) {
            return Err(RamFlashError::Misaligned);
        }
        let dst = offset
            .checked_add(data.len())
            .and_then(|end| self.mem.get_mut(offset..end))
            .ok_or(RamFlashError::OutOfBounds)?;
        for (d, s) in dst.iter_mut().zip(data) {
            *d &= *s;
        }
        Ok(())
    }
}
