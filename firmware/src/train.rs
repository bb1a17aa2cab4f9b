//! The training sessions, checkpointing and resuming.
//!
//! Two sessions run one after the other, each from a zero-initialized model:
//!
//! | session | rule | schedule (per epoch) |
//! |---|---|---|
//! | `adam` | [`Adam`], γ = 0.02 | [`CosineAnnealingLr`] over the epochs, down to 0 |
//! | `sgd-momentum` | [`Sgd`], γ = 0.5, μ = 0.9 | [`StepLr`]: γ halves every 4 epochs |
//!
//! Each epoch takes [`STEPS_PER_EPOCH`] mini-batches of [`BATCH`] training images
//! (a different order every epoch), then measures loss and accuracy on the held-out
//! images and writes a checkpoint (rule, step, optimizer state and params, in gradstep's
//! format) to the flash store. A session passes when the held-out loss is below the
//! untrained model's and the accuracy reaches [`MIN_ACCURACY`].
//!
//! At start-up [`run`] restores the newest checkpoint that decodes, if any: its rule
//! says which session it belongs to (the sessions before it passed, or it would not
//! exist), its step counter how many epochs are done, and the schedule is replayed to
//! that epoch; training then continues exactly where it stopped.

use core::fmt::{self, Write};

use gradstep::checkpoint::{self, RuleId};
use gradstep::schedules::{CosineAnnealingLr, Group, Scheduler, StepLr};
use gradstep::{Adam, Rule, Sgd, StepCount};
use gradstep_flash_store::{Flash, Store};

use crate::Fixed;
use crate::data::{IMAGES, TRAIN};
use crate::model::{PARAMS, evaluate, gradient};

/// Epochs per session.
pub const EPOCHS: u64 = 8;
/// Images per mini-batch.
pub const BATCH: usize = 32;
/// Optimizer steps per epoch.
pub const STEPS_PER_EPOCH: u64 = (TRAIN / BATCH) as u64;
/// Held-out accuracy a session must reach. The Cortex-M0 image sees 2×2-pooled images
/// (16 inputs instead of 64), which cost it a few points.
pub const MIN_ACCURACY: f32 = if crate::data::FEATURES == 64 {
    0.85
} else {
    0.75
};

/// FNV-1a (64-bit) of the params' bits: equal fingerprints, equal models.
pub fn fingerprint(params: &[f32]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in params.iter().flat_map(|p| p.to_bits().to_le_bytes()) {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The fingerprints of both sessions' trained params for the 64-input model, as the
/// host (x86-64, SSE2 lanes) computes them. The Cortex-M4F image (scalar lanes, `VSQRT`)
/// must reach exactly the same bits, so [`run`] fails on any difference; a change to the
/// data, the model or the sessions changes them (the host test prints the new values).
pub const FINGERPRINTS_64: [u64; 2] = [0xfea0_fb32_3c35_8db5, 0x6639_d741_6d25_a7fa];

/// Bytes of the largest checkpoint: Adam (rule section of 56 bytes, two state slices)
/// with the params, see [`gradstep::checkpoint`]'s format table.
pub const CHECKPOINT_LEN: usize =
    checkpoint::HEADER_LEN + 56 + 3 * PARAMS * 4 + checkpoint::CHECKSUM_LEN;

/// Every buffer training needs, allocated once by the caller (in `.bss` on a device).
#[derive(Debug)]
pub struct Buffers {
    /// The model's parameters.
    pub params: [f32; PARAMS],
    /// The mini-batch gradient.
    pub grads: [f32; PARAMS],
    /// The optimizer's state slices, one after the other.
    pub state: [f32; 2 * PARAMS],
    /// Where a checkpoint is encoded before it is written to flash.
    pub checkpoint: [u8; CHECKPOINT_LEN],
}

impl Buffers {
    /// All zero.
    pub const fn new() -> Self {
        Buffers {
            params: [0.0; PARAMS],
            grads: [0.0; PARAMS],
            state: [0.0; 2 * PARAMS],
            checkpoint: [0; CHECKPOINT_LEN],
        }
    }
}

impl Default for Buffers {
    fn default() -> Self {
        Self::new()
    }
}

/// How [`run`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Every session passed.
    Passed,
    /// A session failed its check, or an error was printed.
    Failed,
    /// A reset was asked for (to show resuming from the checkpoint); call [`run`] again
    /// after it.
    Reset,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Optimizer {
    Adam(Adam),
    Sgd(Sgd),
}

impl Optimizer {
    fn lr(&self) -> f64 {
        match self {
            Optimizer::Adam(a) => a.lr,
            Optimizer::Sgd(s) => s.lr,
        }
    }

    fn with_lr(self, lr: f64) -> Self {
        match self {
            Optimizer::Adam(a) => Optimizer::Adam(Adam { lr, ..a }),
            Optimizer::Sgd(s) => Optimizer::Sgd(Sgd { lr, ..s }),
        }
    }

    fn step(&self, scalars: &mut StepCount, b: &mut Buffers) -> Result<(), gradstep::Error> {
        let (m, v) = b.state.split_at_mut(PARAMS);
        match self {
            Optimizer::Adam(a) => a.step(scalars, &mut b.params, &b.grads, &mut [m, v]),
            Optimizer::Sgd(s) => s.step(scalars, &mut b.params, &b.grads, &mut [m]),
        }
    }

    fn encode(&self, scalars: &StepCount, b: &mut Buffers) -> Result<usize, gradstep::Error> {
        let (m, v) = b.state.split_at(PARAMS);
        let out = &mut b.checkpoint;
        match self {
            Optimizer::Adam(a) => checkpoint::encode(a, scalars, &[m, v], Some(&b.params), out),
            Optimizer::Sgd(s) => checkpoint::encode(s, scalars, &[m], Some(&b.params), out),
        }
    }

    /// Restores a checkpoint into `b`: the session it belongs to, the rule, the step.
    fn decode(
        bytes: &[u8],
        b: &mut Buffers,
    ) -> Result<(usize, Optimizer, StepCount), gradstep::Error> {
        let (m, v) = b.state.split_at_mut(PARAMS);
        let params = Some(&mut b.params[..]);
        match checkpoint::peek(bytes)?.rule {
            RuleId::Sgd => {
                let (s, scalars) = checkpoint::decode::<Sgd, f32>(bytes, &mut [m], params)?;
                Ok((1, Optimizer::Sgd(s), scalars))
            }
            // Anything else is refused by decode as the wrong rule.
            _ => {
                let (a, scalars) = checkpoint::decode::<Adam, f32>(bytes, &mut [m, v], params)?;
                Ok((0, Optimizer::Adam(a), scalars))
            }
        }
    }
}

#[derive(Clone, Copy, Debug)]
enum Schedule {
    Cosine(CosineAnnealingLr),
    Step(StepLr),
}

impl Schedule {
    fn start(&mut self, group: &mut Group) -> Result<(), gradstep::Error> {
        match self {
            Schedule::Cosine(s) => s.start(group),
            Schedule::Step(s) => s.start(group),
        }
    }

    fn step(&mut self, group: &mut Group) -> Result<(), gradstep::Error> {
        match self {
            Schedule::Cosine(s) => s.step(group),
            Schedule::Step(s) => s.step(group),
        }
    }
}

struct Session {
    name: &'static str,
    rule: Optimizer,
    schedule: Schedule,
}

fn sessions() -> [Session; 2] {
    [
        Session {
            name: "adam",
            rule: Optimizer::Adam(Adam {
                lr: 0.02,
                ..Adam::default()
            }),
            schedule: Schedule::Cosine(CosineAnnealingLr::new(EPOCHS, 0.0)),
        },
        Session {
            name: "sgd-momentum",
            rule: Optimizer::Sgd(Sgd {
                lr: 0.5,
                momentum: 0.9,
                ..Sgd::default()
            }),
            schedule: Schedule::Step(StepLr::new(4, 0.5)),
        },
    ]
}

/// The training image at position `k` of epoch `epoch`'s order: a stride permutation
/// (the stride is prime to [`TRAIN`]) with a per-epoch offset.
fn image(epoch: u64, k: usize) -> usize {
    (k * 797 + epoch as usize * 131) % TRAIN
}

/// Runs the sessions, resuming from the newest checkpoint in `store`. With
/// `reset_after_epoch`, a run that started without a checkpoint returns
/// [`Outcome::Reset`] after saving that epoch of the first session, so that the caller
/// can reset the device and show the resume.
pub fn run<W: Write, F: Flash>(
    out: &mut W,
    store: &mut Store<F>,
    b: &mut Buffers,
    reset_after_epoch: Option<u64>,
) -> Result<Outcome, fmt::Error> {
    let mut resumed = None;
    for record in store.records().into_iter().flatten() {
        match Optimizer::decode(record.payload, b) {
            Ok(r) => {
                resumed = Some((record.seq, r));
                break;
            }
            // Errors are not printed with their values: formatting an `f64` would add
            // some 17 KiB of flash.
            Err(_) => writeln!(out, "checkpoint seq {} does not restore", record.seq)?,
        }
    }
    let fresh_boot = resumed.is_none();
    let first = resumed.map_or(0, |(_, (session, _, _))| session);
    writeln!(
        out,
        "softmax regression: {} inputs, {PARAMS} params; {TRAIN} training images, {} held out; \
         batch {BATCH}, {EPOCHS} epochs per session",
        crate::data::FEATURES,
        IMAGES - TRAIN,
    )?;

    for (index, session) in sessions().into_iter().enumerate().skip(first) {
        let name = session.name;
        let (base, mut scalars, start) = match resumed.take() {
            Some((seq, (_, rule, scalars))) => {
                let epoch = scalars.step / STEPS_PER_EPOCH;
                writeln!(
                    out,
                    "{name}: resumed from checkpoint seq {seq} (step {}, epoch {epoch})",
                    scalars.step
                )?;
                (rule, scalars, epoch)
            }
            None => {
                b.params.fill(0.0);
                (session.rule, StepCount::default(), 0)
            }
        };
        // The untrained (zero) model, evaluated in the gradient buffer.
        b.grads.fill(0.0);
        let baseline = evaluate(&b.grads, TRAIN..IMAGES);
        writeln!(
            out,
            "{name}: baseline (the zero model, for comparison): held-out loss {} accuracy {}%",
            Fixed(baseline.loss, 4),
            Fixed(100.0 * baseline.accuracy(), 1)
        )?;

        let mut group = Group::new(session.rule.lr());
        let mut schedule = session.schedule;
        let mut ok = schedule.start(&mut group).is_ok();
        for _ in 0..start {
            ok &= schedule.step(&mut group).is_ok();
        }
        if !ok {
            writeln!(out, "{name}: invalid schedule")?;
            return Ok(Outcome::Failed);
        }

        for epoch in start..EPOCHS {
            let rule = base.with_lr(group.lr);
            let mut train_loss = 0.0;
            for k in 0..STEPS_PER_EPOCH as usize {
                let batch = (k * BATCH..(k + 1) * BATCH).map(|j| image(epoch, j));
                train_loss += gradient(&b.params, &mut b.grads, batch);
                if rule.step(&mut scalars, b).is_err() {
                    writeln!(out, "{name}: step refused")?;
                    return Ok(Outcome::Failed);
                }
            }
            let held_out = evaluate(&b.params, TRAIN..IMAGES);
            write!(
                out,
                "{name} epoch {}/{EPOCHS}: lr {} train loss {} held-out loss {} accuracy {}%",
                epoch + 1,
                Fixed(group.lr as f32, 5),
                Fixed(train_loss / STEPS_PER_EPOCH as f32, 4),
                Fixed(held_out.loss, 4),
                Fixed(100.0 * held_out.accuracy(), 1),
            )?;
            if schedule.step(&mut group).is_err() {
                writeln!(out, "\n{name}: schedule failed")?;
                return Ok(Outcome::Failed);
            }
            let saved = rule
                .encode(&scalars, b)
                .map_err(|_| ())
                .and_then(|len| store.write(&b.checkpoint[..len]).map_err(|_| ()));
            match saved {
                Ok(seq) => writeln!(out, "; checkpoint seq {seq}")?,
                Err(()) => {
                    writeln!(out, "\n{name}: checkpoint not saved")?;
                    return Ok(Outcome::Failed);
                }
            }
            if fresh_boot && index == 0 && reset_after_epoch == Some(epoch + 1) {
                writeln!(out, "{name}: resetting the device (as a power cut would)")?;
                return Ok(Outcome::Reset);
            }
        }

        let last = evaluate(&b.params, TRAIN..IMAGES);
        let passed = last.loss < baseline.loss && last.accuracy() >= MIN_ACCURACY;
        writeln!(
            out,
            "{name}: {}: held-out loss {} -> {} (must fall), accuracy {}% (must be >= {}%)",
            if passed { "PASS" } else { "FAIL" },
            Fixed(baseline.loss, 4),
            Fixed(last.loss, 4),
            Fixed(100.0 * last.accuracy(), 1),
            Fixed(100.0 * MIN_ACCURACY, 0),
        )?;
        let print = fingerprint(&b.params);
        writeln!(out, "{name}: params fingerprint {print:016x}")?;
        if crate::data::FEATURES == 64 && print != FINGERPRINTS_64[index] {
            writeln!(
                out,
                "{name}: FAIL: the host computes {:016x}: not the same bits",
                FINGERPRINTS_64[index]
            )?;
            return Ok(Outcome::Failed);
        }
        if !passed {
            return Ok(Outcome::Failed);
        }
    }
    Ok(Outcome::Passed)
}
