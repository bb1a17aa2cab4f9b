//! Power loss at every point of a write: the flash is simulated (NOR rules: erase to
//! `0xFF`, program clears bits), and a write is cut after each of its erase and program
//! units in turn, with the unit being worked on at the cut left untouched, torn (some of
//! its bits done, some not) or, for an erase, half erased. After each cut the region is
//! read as a reset device would read it: the latest record must be the previous
//! checkpoint or the new one, byte for byte, and it must decode; the store must then
//! take further writes normally.

use gradstep::checkpoint;
use gradstep::{Adam, Rule, Sgd, StepCount};
use gradstep_flash_store::{Error, Flash, HEADER_LEN, RamFlash, Store};
use proptest::prelude::*;

const ERASE: usize = 64;

/// What the unit being erased or programmed at the moment of the cut looks like after.
#[derive(Clone, Copy, Debug)]
enum Torn {
    /// The operation had not started.
    Untouched,
    /// Every other bit that should clear did (program); the first half is erased (erase).
    Half,
    /// All but the last bit that should clear did (program); all but one byte erased.
    AllButOne,
    /// Random bits of the unit (from the seed) got their new value.
    Random(u64),
}

const TORN: [Torn; 5] = [
    Torn::Untouched,
    Torn::Half,
    Torn::AllButOne,
    Torn::Random(1),
    Torn::Random(0x9E37_79B9_7F4A_7C15),
];

#[derive(Clone, Copy, Debug, PartialEq)]
struct PowerLoss;

/// A simulated flash region that loses power after `budget` erase or program units.
struct CutFlash<const W: usize> {
    mem: Vec<u8>,
    budget: usize,
    ops: usize,
    torn: Torn,
    dead: bool,
}

impl<const W: usize> CutFlash<W> {
    fn new(mem: Vec<u8>, budget: usize, torn: Torn) -> Self {
        CutFlash {
            mem,
            budget,
            ops: 0,
            torn,
            dead: false,
        }
    }

    /// Counts one unit of work; `Err` (after tearing the unit) if the power goes now.
    fn tick(&mut self) -> Result<(), ()> {
        if self.dead {
            return Err(());
        }
        if self.ops == self.budget {
            self.dead = true;
            return Err(());
        }
        self.ops += 1;
        Ok(())
    }
}

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

impl<const W: usize> Flash for CutFlash<W> {
    type Error = PowerLoss;
    const ERASE_SIZE: usize = ERASE;
    const WRITE_SIZE: usize = W;

    fn bytes(&self) -> &[u8] {
        &self.mem
    }

    fn erase(&mut self, offset: usize) -> Result<(), PowerLoss> {
        assert!(offset.is_multiple_of(ERASE), "misaligned erase");
        let torn = self.torn;
        let ok = self.tick().is_ok();
        let unit = &mut self.mem[offset..offset + ERASE];
        if ok {
            unit.fill(0xFF);
            return Ok(());
        }
        match torn {
            Torn::Untouched => {}
            Torn::Half => unit[..ERASE / 2].fill(0xFF),
            Torn::AllButOne => unit[1..].fill(0xFF),
            Torn::Random(mut seed) => {
                for b in unit.iter_mut() {
                    *b |= xorshift(&mut seed) as u8;
                }
            }
        }
        Err(PowerLoss)
    }

    fn program(&mut self, offset: usize, data: &[u8]) -> Result<(), PowerLoss> {
        assert!(offset.is_multiple_of(W), "misaligned program");
        assert!(data.len().is_multiple_of(W), "partial program unit");
        for (k, chunk) in data.chunks(W).enumerate() {
            let at = offset + k * W;
            assert!(
                self.mem[at..at + W].iter().all(|&b| b == 0xFF),
                "programming a unit that is not erased at {at}"
            );
            let torn = self.torn;
            if self.tick().is_ok() {
                for (d, s) in self.mem[at..at + W].iter_mut().zip(chunk) {
                    *d &= *s;
                }
                continue;
            }
            // Bits to clear, in order; the torn unit clears some of them.
            let unit = &mut self.mem[at..at + W];
            let mut to_clear: Vec<(usize, u8)> = Vec::new();
            for (i, s) in chunk.iter().enumerate() {
                for bit in 0..8 {
                    if s & (1 << bit) == 0 {
                        to_clear.push((i, 1 << bit));
                    }
                }
            }
            let keep = |j: usize, seed: &mut u64| match torn {
                Torn::Untouched => false,
                Torn::Half => j.is_multiple_of(2),
                Torn::AllButOne => j + 1 < to_clear.len(),
                Torn::Random(_) => xorshift(seed) & 1 == 1,
            };
            let mut seed = match torn {
                Torn::Random(s) => s,
                _ => 1,
            };
            for (j, &(i, mask)) in to_clear.iter().enumerate() {
                if keep(j, &mut seed) {
                    unit[i] &= !mask;
                }
            }
            return Err(PowerLoss);
        }
        Ok(())
    }
}

/// Distinct checkpoints of different rules and lengths: Adam with params (n = 13), SGD
/// with momentum (n = 5), Adam without params (n = 2).
fn checkpoints() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for k in 0..6u32 {
        let adam = Adam {
            lr: 0.01 * f64::from(k + 1),
            ..Adam::default()
        };
        let sgd = Sgd {
            lr: 0.1,
            momentum: 0.9,
            ..Sgd::default()
        };
        let n = [13, 5, 2][k as usize % 3];
        let mut params: Vec<f32> = (0..n).map(|i| i as f32 * 0.25 - 1.0).collect();
        let grads: Vec<f32> = (0..n)
            .map(|i| (i as f32 + f32::from(k as u8)).sin())
            .collect();
        let mut scalars = StepCount::default();
        let mut bytes = Vec::new();
        if k % 3 == 1 {
            let mut buf = vec![0.0f32; n];
            for _ in 0..=k {
                sgd.step(&mut scalars, &mut params, &grads, &mut [&mut buf])
                    .unwrap();
            }
            let len = checkpoint::encoded_len(&sgd, checkpoint::ElementType::F32, n, true).unwrap();
            bytes.resize(len, 0);
            checkpoint::encode(&sgd, &scalars, &[&buf], Some(&params), &mut bytes).unwrap();
        } else {
            let (mut m, mut v) = (vec![0.0f32; n], vec![0.0f32; n]);
            for _ in 0..=k {
                adam.step(&mut scalars, &mut params, &grads, &mut [&mut m, &mut v])
                    .unwrap();
            }
            let with_params = k % 3 == 0;
            let len = checkpoint::encoded_len(&adam, checkpoint::ElementType::F32, n, with_params)
                .unwrap();
            bytes.resize(len, 0);
            let p = with_params.then_some(&params[..]);
            checkpoint::encode(&adam, &scalars, &[&m, &v], p, &mut bytes).unwrap();
        }
        out.push(bytes);
    }
    out
}

/// The checkpoint decodes completely (checksum, rule section, arrays).
fn assert_decodes(bytes: &[u8]) {
    let h = checkpoint::peek(bytes).unwrap();
    let n = h.n as usize;
    let mut state = vec![vec![0.0f32; n]; h.slots];
    let mut slices: Vec<&mut [f32]> = state.iter_mut().map(|s| &mut s[..]).collect();
    let mut params = vec![0.0f32; n];
    let params = h.has_params.then_some(&mut params[..]);
    checkpoint::decode_any::<f32>(bytes, &mut slices, params).unwrap();
}

/// The latest record's payload, read the way a device does after a reset.
fn latest_after_reset<const W: usize>(mem: &mut [u8]) -> Option<Vec<u8>> {
    let store = Store::new(RamFlash::<ERASE, W>::new(mem)).unwrap();
    let latest = store.latest().map(|r| r.payload.to_vec());
    if let Some(p) = &latest {
        assert_decodes(p);
    }
    latest
}

/// Writes `payloads` in order without interruption into `mem`.
fn write_all<const W: usize>(mem: &mut [u8], payloads: &[&[u8]]) {
    let mut store = Store::new(RamFlash::<ERASE, W>::new(mem)).unwrap();
    for p in payloads {
        store.write(p).unwrap();
    }
}

/// Cuts a write of `new` over `before` at every unit with every kind of tear.
fn cut_everywhere<const W: usize>(before: &[u8], previous: Option<&[u8]>, new: &[u8]) {
    // Count the units of an uninterrupted write.
    let mut store = Store::new(CutFlash::<W>::new(
        before.to_vec(),
        usize::MAX,
        Torn::Untouched,
    ))
    .unwrap();
    store.write(new).unwrap();
    let total = store.flash().ops;
    assert!(total > new.len() / W, "every program unit counts");

    for budget in 0..=total {
        for torn in TORN {
            let mut store = Store::new(CutFlash::<W>::new(before.to_vec(), budget, torn)).unwrap();
            let result = store.write(new);
            let mut mem = store.into_inner().mem;
            if budget == total {
                assert!(result.is_ok(), "uncut write: {result:?}");
            } else {
                assert_eq!(
                    result,
                    Err(Error::Flash(PowerLoss)),
                    "cut at {budget}/{total}"
                );
            }
            let latest = latest_after_reset::<W>(&mut mem);
            let ctx = format!("W = {W}, cut after {budget} of {total} units, {torn:?}");
            match latest.as_deref() {
                Some(p) if p == new => {}
                Some(p) => assert_eq!(Some(p), previous, "{ctx}: neither old nor new"),
                None => assert_eq!(previous, None, "{ctx}: the previous checkpoint is lost"),
            }
            if budget == total {
                assert_eq!(latest.as_deref(), Some(new), "{ctx}");
            }
            // The store goes on: the next write becomes the latest, and the record it
            // did not overwrite is whatever was latest before it.
            let mut store = Store::new(RamFlash::<ERASE, W>::new(&mut mem)).unwrap();
            let next = previous.unwrap_or(new);
            store.write(next).unwrap();
            let [first, second] = store.records();
            assert_eq!(first.map(|r| r.payload), Some(next), "{ctx}");
            assert_eq!(second.map(|r| r.payload), latest.as_deref(), "{ctx}");
        }
    }
}

fn scenarios<const W: usize>() {
    let cps = checkpoints();
    let region = 2 * 6 * ERASE;
    // Fresh regions: erased flash, and zeroed RAM (what QEMU's RAM starts as).
    for fill in [0xFF, 0x00] {
        let before = vec![fill; region];
        cut_everywhere::<W>(&before, None, &cps[0]);
    }
    // One record; two records (the write reuses slot 0); a torn record in the slot
    // being reused; records of different lengths and rules overwriting each other.
    for (history, new) in [
        (&[0][..], 1),
        (&[0, 1][..], 2),
        (&[1, 2, 0][..], 3),
        (&[3, 4][..], 5),
        (&[5, 4, 3, 2][..], 0),
    ] {
        let mut before = vec![0xFF; region];
        let payloads: Vec<&[u8]> = history.iter().map(|&i| &cps[i][..]).collect();
        write_all::<W>(&mut before, &payloads);
        let previous = payloads.last().copied();
        cut_everywhere::<W>(&before, previous, &cps[new]);
    }
    // The slot being reused holds a torn write (power lost mid-header earlier).
    let mut before = vec![0xFF; region];
    write_all::<W>(&mut before, &[&cps[0], &cps[1]]);
    let mut store = Store::new(CutFlash::<W>::new(before.clone(), 9, Torn::Half)).unwrap();
    assert!(store.write(&cps[2]).is_err());
    let before = store.into_inner().mem;
    cut_everywhere::<W>(&before, Some(&cps[1]), &cps[3]);
}

#[test]
fn cut_at_every_byte() {
    scenarios::<1>();
}

#[test]
fn cut_at_every_word() {
    scenarios::<4>();
}

#[test]
fn cut_at_every_double_word() {
    scenarios::<8>();
}

#[test]
fn corrupting_any_byte_of_the_latest_falls_back_to_the_previous() {
    let cps = checkpoints();
    let mut mem = vec![0xFF; 2 * 6 * ERASE];
    write_all::<4>(&mut mem, &[&cps[0], &cps[1]]);
    let latest = {
        let store = Store::new(RamFlash::<ERASE, 4>::new(&mut mem)).unwrap();
        store.latest().unwrap().slot
    };
    let start = latest * 6 * ERASE;
    for at in start..start + HEADER_LEN + cps[1].len() {
        for flip in [0x01u8, 0x80, 0xFF] {
            let mut bad = mem.clone();
            bad[at] ^= flip;
            assert_eq!(
                latest_after_reset::<4>(&mut bad).as_deref(),
                Some(&cps[0][..]),
                "byte {at} ^ {flip:#x}"
            );
        }
    }
}

#[test]
fn refuses_what_it_could_not_read_back() {
    let cps = checkpoints();
    let mut mem = vec![0xFF; 4 * ERASE];
    let mut store = Store::new(RamFlash::<ERASE, 4>::new(&mut mem)).unwrap();
    assert_eq!(store.capacity(), 2 * ERASE - HEADER_LEN);
    assert!(matches!(store.write(&cps[0]), Err(Error::TooLarge { .. })));
    assert_eq!(store.write(b"not a checkpoint"), Err(Error::NotACheckpoint));
    let short = &cps[2][..cps[2].len() - 1];
    assert_eq!(store.write(short), Err(Error::NotACheckpoint));
    assert!(store.latest().is_none());
    // Trailing bytes after a checkpoint's stated length would not be read back as written.
    let mut padded = cps[2].clone();
    padded.push(0);
    assert_eq!(store.write(&padded), Err(Error::NotACheckpoint));
    assert!(store.write(&cps[2]).is_ok());
    store.clear().unwrap();
    assert!(store.latest().is_none());
    // Geometry: a program unit larger than the header, an erase unit not a multiple of it.
    let mut small = [0u8; 16];
    assert!(matches!(
        Store::new(RamFlash::<8, 8>::new(&mut small)),
        Err(Error::Geometry)
    ));
    let mut mem = [0u8; 256];
    assert!(matches!(
        Store::new(RamFlash::<6, 4>::new(&mut mem)),
        Err(Error::Geometry)
    ));
    assert!(matches!(
        Store::new(RamFlash::<64, 32>::new(&mut mem)),
        Err(Error::Geometry)
    ));
}

#[test]
fn sequence_numbers_wrap() {
    let cps = checkpoints();
    let mut mem = vec![0xFF; 2 * 6 * ERASE];
    // Forge a latest record with sequence number u32::MAX by writing it with the counter
    // set: write once, then patch seq and CRC the way `write` computes them.
    write_all::<4>(&mut mem, &[&cps[0]]);
    let seq_max = u32::MAX.to_le_bytes();
    mem[4..8].copy_from_slice(&seq_max);
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);
    let mut d = crc.digest();
    d.update(&mem[..12]);
    d.update(&cps[0]);
    let sum = d.finalize();
    mem[12..16].copy_from_slice(&sum.to_le_bytes());
    let mut store = Store::new(RamFlash::<ERASE, 4>::new(&mut mem)).unwrap();
    assert_eq!(store.latest().unwrap().seq, u32::MAX);
    assert_eq!(store.write(&cps[1]).unwrap(), 0);
    assert_eq!(store.latest().unwrap().payload, &cps[1][..]);
    assert_eq!(store.write(&cps[2]).unwrap(), 1);
    assert_eq!(store.latest().unwrap().payload, &cps[2][..]);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Random histories of writes, some cut at random points: the latest record is
    /// always the last write that completed or the one cut (if its commit got through).
    #[test]
    fn random_histories(ops in proptest::collection::vec((0usize..6, proptest::option::of(0usize..200), 0usize..5), 1..12)) {
        let cps = checkpoints();
        let mut mem = vec![0xFFu8; 2 * 6 * ERASE];
        let mut committed: Option<Vec<u8>> = None;
        for (which, cut, torn) in ops {
            let new = &cps[which];
            let mut store = Store::new(CutFlash::<4>::new(mem.clone(), cut.unwrap_or(usize::MAX), TORN[torn])).unwrap();
            let ok = store.write(new).is_ok();
            mem = store.into_inner().mem;
            let latest = latest_after_reset::<4>(&mut mem);
            if ok {
                prop_assert_eq!(latest.as_deref(), Some(&new[..]));
            } else {
                prop_assert!(latest.as_deref() == Some(&new[..]) || latest == committed);
            }
            committed = latest;
        }
    }
}

/// Issue 12, finding 8: a payload whose own gradstep checksum is wrong (or whose rule
/// section the decoder refuses) used to be written, and the write after it then erased
/// the last checkpoint that decodes. Such a payload is refused, and a record holding one
/// (written by an older build, or by anyone with a CRC-32C) is not the latest.
#[test]
fn refuses_a_checkpoint_that_does_not_decode() {
    let cps = checkpoints();
    let mut mem = vec![0xFF; 8 * ERASE];
    let mut store = Store::new(RamFlash::<ERASE, 4>::new(&mut mem)).unwrap();
    store.write(&cps[1]).unwrap();

    // One flipped bit in the state: the header is intact, the gradstep CRC is not.
    let mut corrupt = cps[2].clone();
    let last = corrupt.len() - 5;
    corrupt[last] ^= 1;
    assert!(checkpoint::peek(&corrupt).is_ok());
    assert_eq!(store.write(&corrupt), Err(Error::NotACheckpoint));
    // A valid CRC over a hyperparameter the rule refuses (Adam's lr = -1).
    let mut refused = cps[2].clone();
    refused[32..40].copy_from_slice(&(-1.0f64).to_bits().to_le_bytes());
    let body = refused.len() - 4;
    let crc = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC).checksum(&refused[..body]);
    refused[body..].copy_from_slice(&crc.to_le_bytes());
    assert!(checkpoint::peek(&refused).is_ok());
    assert_eq!(store.write(&refused), Err(Error::NotACheckpoint));
    assert_eq!(store.latest().unwrap().payload, &cps[1][..]);

    // The same payload put in the other slot with a correct record CRC by hand: it is
    // not valid, so the next write goes over it and keeps cps[1].
    let _ = store.into_inner();
    let slot_len = 4 * ERASE;
    let mut head = [0u8; HEADER_LEN];
    head[..4].copy_from_slice(b"GSFS");
    head[4..8].copy_from_slice(&2u32.to_le_bytes());
    head[8..12].copy_from_slice(&(corrupt.len() as u32).to_le_bytes());
    let crc32c = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);
    let mut d = crc32c.digest();
    d.update(&head[..12]);
    d.update(&corrupt);
    let crc = d.finalize();
    head[12..].copy_from_slice(&crc.to_le_bytes());
    mem[slot_len..slot_len + HEADER_LEN].copy_from_slice(&head);
    mem[slot_len + HEADER_LEN..slot_len + HEADER_LEN + corrupt.len()].copy_from_slice(&corrupt);
    let mut store = Store::new(RamFlash::<ERASE, 4>::new(&mut mem)).unwrap();
    assert_eq!(store.latest().unwrap().payload, &cps[1][..]);
    store.write(&cps[2]).unwrap();
    let records = store.records();
    assert_eq!(records[0].unwrap().payload, &cps[2][..]);
    assert_eq!(records[1].unwrap().payload, &cps[1][..]);
}
