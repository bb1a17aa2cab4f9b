//! Checkpoint tests:
//! - for every rule, random hyperparameters and options, f32 and f64, with and without
//!   the params section: k steps, checkpoint, restore into fresh buffers (and a rule
//!   value decoded from the checkpoint), m more steps: bit-identical to k + m steps
//!   without stopping; re-encoding what was restored gives the same bytes;
//! - every refusal (truncation at every length, every single-bit flip, wrong version,
//!   rule, element type, n, slice count, missing params, forged fields with a valid
//!   checksum, invalid hyperparameters) returns its typed error and leaves the
//!   destination buffers as they were; encoding refuses too small an output untouched;
//! - fuzzing: random byte strings, forged headers with valid checksums, and valid
//!   checkpoints under random flips, insertions, deletions, truncations and extensions
//!   never panic, and whatever decodes re-encodes to the same bytes;
//! - a golden checkpoint, so that any change to the format fails.

use gradstep::checkpoint::{
    self, AnyRule, AnyScalars, CheckpointError, Checkpointable, Element, ElementType, HEADER_LEN,
    Header, RuleId, Section,
};
use gradstep::lanes::Lanes;
use gradstep::*;
use proptest::prelude::*;
use proptest::test_runner::TestCaseError;

mod subjects;
use subjects::Subject;

static CRC: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

/// The value destination buffers are filled with, to see that a refusal wrote nothing.
const SENTINEL: f64 = -7777.25;

/// The other element type, for the wrong-element-type refusal.
trait Other: Element {
    type O: Element;
}
impl Other for f32 {
    type O = f64;
}
impl Other for f64 {
    type O = f32;
}

fn bits<T: Real>(xs: &[T]) -> Vec<u64> {
    xs.iter().map(|x| x.to_f64().to_bits()).collect()
}

fn all_bits<T: Real>(xs: &[Vec<T>]) -> Vec<Vec<u64>> {
    xs.iter().map(|x| bits(x)).collect()
}

fn slices<T>(state: &mut [Vec<T>]) -> Vec<&mut [T]> {
    state.iter_mut().map(|s| &mut s[..]).collect()
}

fn views<T>(state: &[Vec<T>]) -> Vec<&[T]> {
    state.iter().map(|s| &s[..]).collect()
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().unwrap())
}

/// Rewrites the checksum where the stated length puts it, as a forger would.
fn fix_crc(bytes: &mut [u8]) {
    if bytes.len() < 16 {
        return;
    }
    let len = u64_at(bytes, 8);
    if (4..=bytes.len() as u64).contains(&len) {
        let body = len as usize - 4;
        let crc = CRC.checksum(&bytes[..body]);
        bytes[body..body + 4].copy_from_slice(&crc.to_le_bytes());
    }
}

fn encode_vec<R: Checkpointable, T: Element>(
    rule: &R,
    scalars: &R::Scalars,
    state: &[Vec<T>],
    params: Option<&[T]>,
) -> Result<Vec<u8>, TestCaseError> {
    let n = params.map_or(state.first().map_or(0, Vec::len), <[T]>::len);
    let len = checkpoint::encoded_len(rule, T::TYPE, n, params.is_some())?;
    let mut out = vec![0u8; len + 7];
    let written = checkpoint::encode(rule, scalars, &views(state), params, &mut out)?;
    prop_assert_eq!(written, len);
    prop_assert!(out[len..].iter().all(|&b| b == 0), "wrote past the end");
    out.truncate(len);
    Ok(out)
}

fn encode_any_vec<T: Element>(
    rule: &AnyRule,
    scalars: &AnyScalars,
    state: &[Vec<T>],
    params: Option<&[T]>,
) -> Result<Vec<u8>, Error> {
    let n = params.map_or(state.first().map_or(0, Vec::len), <[T]>::len);
    let mut out = vec![0u8; rule.encoded_len(T::TYPE, n, params.is_some())?];
    let len = checkpoint::encode_any(rule, scalars, &views(state), params, &mut out)?;
    out.truncate(len);
    Ok(out)
}

/// Params, one gradient per step and garbage initial state from `values`.
type Setup<T> = (Vec<T>, Vec<Vec<T>>, Vec<Vec<T>>);

fn setup<T: Real>(n: usize, slots: usize, values: &[f64], steps: usize) -> Setup<T> {
    let mut it = values.iter().cycle().map(|&x| T::from_f64(x));
    let mut take = |len: usize| -> Vec<T> { (0..len).map(|_| it.next().unwrap()).collect() };
    let params = take(n);
    let grads = (0..steps).map(|_| take(n)).collect();
    let state = (0..slots).map(|_| take(n)).collect();
    (params, grads, state)
}

/// Runs `grads` through `rule`.
fn run<R: Rule, T: Real>(
    rule: &R,
    scalars: &mut R::Scalars,
    params: &mut [T],
    state: &mut [Vec<T>],
    grads: &[Vec<T>],
) -> Result<(), TestCaseError> {
    for g in grads {
        prop_assert_eq!(rule.step(scalars, params, g, &mut slices(state)), Ok(()));
    }
    Ok(())
}

/// k steps, checkpoint, restore into fresh buffers, m steps == k + m steps.
fn resume<R, T>(
    rule: R,
    n: usize,
    values: &[f64],
    k: usize,
    m: usize,
    with_params: bool,
) -> Result<(), TestCaseError>
where
    R: Subject + Checkpointable + Into<AnyRule>,
    R::Scalars: Into<AnyScalars>,
    T: Element,
{
    let slots = rule.state_slots();
    let (p0, grads, s0) = setup::<T>(n, slots, values, k + m);
    let (mut pu, mut su, mut cu) = (p0.clone(), s0.clone(), R::Scalars::default());
    run(&rule, &mut cu, &mut pu, &mut su, &grads)?;

    let (mut pi, mut si, mut ci) = (p0, s0, R::Scalars::default());
    run(&rule, &mut ci, &mut pi, &mut si, &grads[..k])?;
    let bytes = encode_vec(&rule, &ci, &si, with_params.then_some(&pi[..]))?;
    let header = checkpoint::peek(&bytes)?;
    let stored_n = if slots == 0 && !with_params { 0 } else { n };
    prop_assert_eq!(
        header,
        Header {
            version: 1,
            rule: R::ID,
            element: T::TYPE,
            n: stored_n as u64,
            slots,
            has_params: with_params,
            len: bytes.len() as u64,
        }
    );

    // Restore into buffers that hold something else entirely.
    let sentinel = T::from_f64(SENTINEL);
    let mut sr = vec![vec![sentinel; n]; header.slots];
    let mut pr = if with_params {
        vec![sentinel; n]
    } else {
        pi.clone()
    };
    let (rr, mut cr) =
        checkpoint::decode::<R, T>(&bytes, &mut slices(&mut sr), with_params.then_some(&mut pr))?;
    // Debug shows -0.0 and 0.0 apart, which == does not.
    prop_assert_eq!(format!("{rr:?}"), format!("{rule:?}"));
    prop_assert_eq!(format!("{cr:?}"), format!("{ci:?}"));
    prop_assert_eq!(all_bits(&sr), all_bits(&si));
    prop_assert_eq!(bits(&pr), bits(&pi));

    // The run-time-typed decoder agrees, and both re-encode to the same bytes.
    let mut sa = vec![vec![sentinel; n]; header.slots];
    let mut pa = vec![sentinel; n];
    let (ra, ca) =
        checkpoint::decode_any::<T>(&bytes, &mut slices(&mut sa), with_params.then_some(&mut pa))?;
    let (any_rule, any_scalars): (AnyRule, AnyScalars) = (rule.into(), ci.into());
    prop_assert_eq!(ra, any_rule);
    prop_assert_eq!(ca, any_scalars);
    prop_assert_eq!(all_bits(&sa), all_bits(&sr));
    prop_assert_eq!(
        &encode_vec(&rr, &cr, &sr, with_params.then_some(&pr[..]))?,
        &bytes
    );
    prop_assert_eq!(
        &encode_any_vec(&ra, &ca, &sr, with_params.then_some(&pr[..]))?,
        &bytes
    );

    run(&rr, &mut cr, &mut pr, &mut sr, &grads[k..])?;
    prop_assert_eq!(bits(&pr), bits(&pu), "params after resuming, {:?}", rule);
    prop_assert_eq!(all_bits(&sr), all_bits(&su), "state after resuming");
    prop_assert_eq!(format!("{cr:?}"), format!("{cu:?}"));
    Ok(())
}

/// Decodes `bytes` into sentinel-filled buffers (`slots` slices of `len`, and params of
/// `len` if `params`), expecting a refusal; checks nothing was written.
fn refused<R: Checkpointable, T: Element>(
    bytes: &[u8],
    slots: usize,
    len: usize,
    params: bool,
) -> Result<Error, TestCaseError> {
    let sentinel = T::from_f64(SENTINEL);
    let mut state = vec![vec![sentinel; len]; slots];
    let mut p = vec![sentinel; len];
    let r = checkpoint::decode::<R, T>(bytes, &mut slices(&mut state), params.then_some(&mut p));
    let Err(e) = r else {
        return Err(TestCaseError::fail(format!("accepted: {r:?}")));
    };
    let untouched = |xs: &[T]| xs.iter().all(|x| x.to_f64() == SENTINEL);
    prop_assert!(state.iter().all(|s| untouched(s)), "state written on {e:?}");
    prop_assert!(untouched(&p), "params written on {e:?}");
    Ok(e)
}

fn ck(e: CheckpointError) -> Error {
    Error::Checkpoint(e)
}

fn field(name: &'static str) -> Error {
    ck(CheckpointError::InvalidField { field: name })
}

/// The decoder's verdict on `bytes` with one bit flipped at `i`, as the format says.
fn expected_after_flip(bytes: &[u8], i: usize) -> Error {
    match i {
        0..4 => ck(CheckpointError::BadMagic),
        4..6 => ck(CheckpointError::UnsupportedVersion {
            found: u16::from_le_bytes([bytes[4], bytes[5]]),
        }),
        _ => {
            let len = u64_at(bytes, 8);
            if len < 36 {
                field("length")
            } else if len > bytes.len() as u64 {
                ck(CheckpointError::Truncated {
                    needed: len,
                    found: bytes.len(),
                })
            } else {
                let body = len as usize - 4;
                ck(CheckpointError::ChecksumMismatch {
                    stored: u32::from_le_bytes(bytes[body..body + 4].try_into().unwrap()),
                    computed: CRC.checksum(&bytes[..body]),
                })
            }
        }
    }
}

/// Every way a checkpoint is refused, each with its typed error and nothing written.
fn refusals<R, T>(
    rule: R,
    n: usize,
    values: &[f64],
    k: usize,
    with_params: bool,
) -> Result<(), TestCaseError>
where
    R: Subject + Checkpointable + Into<AnyRule>,
    T: Element + Other,
{
    let slots = rule.state_slots();
    let (mut p, grads, mut s) = setup::<T>(n, slots, values, k);
    let mut c = R::Scalars::default();
    run(&rule, &mut c, &mut p, &mut s, &grads)?;
    let bytes = encode_vec(&rule, &c, &s, with_params.then_some(&p[..]))?;
    let len = bytes.len();
    let stored_n = u64_at(&bytes, 24) as usize;
    let refuse = |b: &[u8]| refused::<R, T>(b, slots, stored_n, with_params);

    // Truncated at every length.
    for cut in 0..len {
        let e = refuse(&bytes[..cut])?;
        prop_assert!(
            matches!(e, Error::Checkpoint(CheckpointError::Truncated { found, .. }) if found == cut),
            "cut at {cut}: {e:?}"
        );
        let peeked = checkpoint::peek(&bytes[..cut]);
        prop_assert_eq!(peeked.is_ok(), cut >= HEADER_LEN, "peek at {}", cut);
    }
    // Trailing bytes are not part of the checkpoint.
    let mut longer = bytes.clone();
    longer.extend_from_slice(&[0xEE; 9]);
    let mut st = vec![vec![T::ZERO; stored_n]; slots];
    checkpoint::decode::<R, T>(&longer, &mut slices(&mut st), None)?;

    // Every single-bit flip.
    for i in 0..len {
        for bit in 0..8 {
            let mut b = bytes.clone();
            b[i] ^= 1 << bit;
            let e = refuse(&b)?;
            prop_assert_eq!(e, expected_after_flip(&b, i), "bit {} of byte {}", bit, i);
            let mut st = vec![vec![T::ZERO; stored_n]; slots];
            let any = checkpoint::decode_any::<T>(&b, &mut slices(&mut st), None);
            prop_assert_eq!(any.err(), Some(e));
        }
    }

    // Wrong version, with a valid checksum.
    for v in [0u16, 2, 3, 0x0100, u16::MAX] {
        let mut b = bytes.clone();
        b[4..6].copy_from_slice(&v.to_le_bytes());
        fix_crc(&mut b);
        prop_assert_eq!(
            refuse(&b)?,
            ck(CheckpointError::UnsupportedVersion { found: v })
        );
    }

    // Wrong rule, wrong element type.
    let e = if R::ID == RuleId::Sgd {
        refused::<Adam, T>(&bytes, slots, stored_n, with_params)?
    } else {
        refused::<Sgd, T>(&bytes, slots, stored_n, with_params)?
    };
    let expected = if R::ID == RuleId::Sgd {
        RuleId::Adam
    } else {
        RuleId::Sgd
    };
    prop_assert_eq!(
        e,
        ck(CheckpointError::WrongRule {
            expected,
            found: R::ID
        })
    );
    prop_assert_eq!(
        refused::<R, T::O>(&bytes, slots, stored_n, with_params)?,
        ck(CheckpointError::WrongElementType {
            expected: <T::O as Element>::TYPE,
            found: T::TYPE
        })
    );

    // Destination buffers that do not fit: wrong n, wrong slice count, no params.
    let mismatch = |section, found| {
        ck(CheckpointError::LengthMismatch {
            section,
            expected: stored_n as u64,
            found,
        })
    };
    let sentinel = T::from_f64(SENTINEL);
    for wrong in [stored_n + 1, stored_n.wrapping_sub(1)] {
        if wrong == usize::MAX {
            continue;
        }
        if slots > 0 {
            let mut state = vec![vec![sentinel; stored_n]; slots];
            state[slots - 1] = vec![sentinel; wrong];
            let r = checkpoint::decode::<R, T>(&bytes, &mut slices(&mut state), None);
            prop_assert_eq!(r.err(), Some(mismatch(Section::State(slots - 1), wrong)));
            prop_assert!(state.iter().flatten().all(|x| x.to_f64() == SENTINEL));
        }
        if with_params {
            let mut state = vec![vec![sentinel; stored_n]; slots];
            let mut params = vec![sentinel; wrong];
            let r = checkpoint::decode::<R, T>(&bytes, &mut slices(&mut state), Some(&mut params));
            prop_assert_eq!(r.err(), Some(mismatch(Section::Params, wrong)));
            prop_assert!(state.iter().flatten().all(|x| x.to_f64() == SENTINEL));
            prop_assert!(params.iter().all(|x| x.to_f64() == SENTINEL));
        }
    }
    for wrong in [slots + 1, slots.wrapping_sub(1)] {
        if wrong != usize::MAX {
            prop_assert_eq!(
                refused::<R, T>(&bytes, wrong, stored_n, with_params)?,
                ck(CheckpointError::SlotCount {
                    expected: slots,
                    found: wrong
                })
            );
        }
    }
    if !with_params {
        prop_assert_eq!(
            refused::<R, T>(&bytes, slots, stored_n, true)?,
            ck(CheckpointError::ParamsAbsent)
        );
    }

    // Forged fields with a valid checksum.
    let forged = |at: usize, new: &[u8]| {
        let mut b = bytes.clone();
        b[at..at + new.len()].copy_from_slice(new);
        fix_crc(&mut b);
        b
    };
    let past_last = *gradstep::rules::RuleId::ALL.last().unwrap() as u16 + 1;
    for id in [0u16, past_last, 0x0101, u16::MAX] {
        prop_assert_eq!(
            refuse(&forged(6, &id.to_le_bytes()))?,
            ck(CheckpointError::UnknownRule { found: id })
        );
    }
    for code in [0u8, 3, 4, 8, 255] {
        prop_assert_eq!(refuse(&forged(16, &[code]))?, field("element type"));
    }
    prop_assert_eq!(refuse(&forged(17, &[bytes[17] | 2]))?, field("flags"));
    prop_assert_eq!(refuse(&forged(17, &[bytes[17] | 0x80]))?, field("flags"));
    let too_many = gradstep::MAX_STATE_SLOTS as u8 + 1;
    prop_assert_eq!(refuse(&forged(18, &[too_many]))?, field("state slots"));
    prop_assert_eq!(refuse(&forged(19, &[1]))?, field("reserved"));
    let section = u32::from_le_bytes(bytes[20..24].try_into().unwrap());
    for wrong in [section + 8, section - 8, 0] {
        prop_assert_eq!(
            refuse(&forged(20, &wrong.to_le_bytes()))?,
            field("rule section length")
        );
    }
    let n_error = if slots == 0 && !with_params {
        "n"
    } else {
        "length"
    };
    prop_assert_eq!(
        refuse(&forged(24, &(stored_n as u64 + 1).to_le_bytes()))?,
        field(n_error)
    );
    // A header whose slice count disagrees with the rule's options, lengths consistent.
    for forged_slots in 0..=3usize {
        if forged_slots == slots {
            continue;
        }
        let e = T::TYPE.size();
        let arrays = 32 + section as usize;
        let params_at = arrays + slots * stored_n * e;
        let mut b = bytes[..arrays].to_vec();
        b.extend(std::iter::repeat_n(0u8, forged_slots * stored_n * e));
        b.extend_from_slice(&bytes[params_at..len - 4]);
        b.extend_from_slice(&[0; 4]);
        b[18] = forged_slots as u8;
        let total = b.len() as u64;
        b[8..16].copy_from_slice(&total.to_le_bytes());
        fix_crc(&mut b);
        let expected = if forged_slots == 0 && !with_params && stored_n != 0 {
            "n"
        } else {
            "state slots"
        };
        prop_assert_eq!(
            refused::<R, T>(&b, forged_slots, stored_n, with_params)?,
            field(expected)
        );
    }
    // Unknown option bits; hyperparameters out of range, each field in turn (the
    // section starts with the numeric hyperparameters, in the order `fields()` lists
    // them, then the option bits).
    let fields = R::fields();
    let options_at = 32 + 8 * fields.len();
    for bit in [32u64, 63] {
        let word = u64_at(&bytes, options_at) | 1 << bit;
        prop_assert_eq!(
            refuse(&forged(options_at, &word.to_le_bytes()))?,
            field("options")
        );
    }
    // A choice index past the last value (one u64 per choice after the option bits).
    let choices = R::ID.fields().iter().filter_map(|f| match f.kind {
        gradstep::rules::FieldKind::Choice(names) => Some(names.len() as u64),
        _ => None,
    });
    for (k, count) in choices.enumerate() {
        for word in [count, u64::from(u32::MAX) + 1, u64::MAX] {
            prop_assert_eq!(
                refuse(&forged(options_at + 8 + 8 * k, &word.to_le_bytes()))?,
                field("choices")
            );
        }
    }
    for (i, (name, _, bad)) in fields.iter().enumerate() {
        for v in bad {
            let e = refuse(&forged(32 + 8 * i, &v.to_bits().to_le_bytes()))?;
            prop_assert!(
                matches!(e, Error::InvalidHyperparameter { name: got, .. } if got == *name),
                "{name} = {v}: {e:?}"
            );
        }
    }

    // Encoding: an output buffer too short at every length is refused and untouched.
    for cut in 0..len {
        let mut out = vec![0xA5u8; cut];
        let r = checkpoint::encode(
            &rule,
            &c,
            &views(&s),
            with_params.then_some(&p[..]),
            &mut out,
        );
        prop_assert_eq!(
            r,
            Err(ck(CheckpointError::BufferTooSmall {
                needed: len,
                found: cut
            }))
        );
        prop_assert!(out.iter().all(|&b| b == 0xA5));
    }
    let mut out = vec![0xA5u8; len];
    let mut extra = s.clone();
    extra.push(vec![T::ZERO; n]);
    let r = checkpoint::encode(&rule, &c, &views(&extra), None, &mut out);
    prop_assert_eq!(
        r,
        Err(Error::StateSlots {
            expected: slots,
            found: slots + 1
        })
    );
    if slots > 0 {
        let mut short = s.clone();
        short[slots - 1].push(T::ZERO);
        let r = checkpoint::encode(&rule, &c, &views(&short), Some(&p), &mut out);
        prop_assert_eq!(
            r,
            Err(Error::LengthMismatch {
                buffer: Buffer::State(slots - 1),
                expected: n,
                found: n + 1
            })
        );
    }
    let (name, set, bad) = &fields[k % fields.len()];
    let mut broken = rule;
    set(&mut broken, bad[0]);
    let r = checkpoint::encode(&broken, &c, &views(&s), None, &mut out);
    prop_assert!(
        matches!(r, Err(Error::InvalidHyperparameter { name: got, .. }) if got == *name),
        "{r:?}"
    );
    let any: AnyRule = rule.into();
    let wrong = match any.default_scalars() {
        AnyScalars::Step(_) => AnyScalars::Asgd(AsgdScalars::default()),
        _ => AnyScalars::Step(StepCount::default()),
    };
    prop_assert_eq!(
        checkpoint::encode_any(&any, &wrong, &views(&s), None, &mut out),
        Err(ck(CheckpointError::WrongScalars { rule: R::ID }))
    );
    prop_assert!(out.iter().all(|&b| b == 0xA5));
    Ok(())
}

fn max_len<T: Real>() -> usize {
    3 * <T as Real>::Vector::WIDTH + 1
}

fn values() -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(
        prop_oneof![1 => Just(0.0), 1 => Just(-0.0), 8 => -10.0..10.0f64, 1 => -1e3..1e3f64],
        1..64,
    )
}

/// One module of checkpoint round trips per registry row (`gradstep::for_each_rule!`).
macro_rules! checkpoint_props {
    ($({ id: $id:literal, rule: $r:ident, name: $m:ident, $($rest:tt)* }),* $(,)?) => {$(
        mod $m {
            use super::*;
            proptest! {
                #![proptest_config(ProptestConfig::with_cases(subjects::cases(512)))]
                #[test]
                fn resume_f32(rule in <$r>::arb(), n in 0..=max_len::<f32>(), v in values(), k in 0usize..4, m in 1usize..4, with_params in any::<bool>()) {
                    resume::<$r, f32>(rule, n, &v, k, m, with_params)?;
                }
                #[test]
                fn resume_f64(rule in <$r>::arb(), n in 0..=max_len::<f64>(), v in values(), k in 0usize..4, m in 1usize..4, with_params in any::<bool>()) {
                    resume::<$r, f64>(rule, n, &v, k, m, with_params)?;
                }
            }
            proptest! {
                #![proptest_config(ProptestConfig::with_cases(subjects::cases(64)))]
                #[test]
                fn refusals_f32(rule in <$r>::arb(), n in 0..=max_len::<f32>(), v in values(), k in 0usize..3, with_params in any::<bool>()) {
                    refusals::<$r, f32>(rule, n, &v, k, with_params)?;
                }
                #[test]
                fn refusals_f64(rule in <$r>::arb(), n in 0..=max_len::<f64>(), v in values(), k in 0usize..3, with_params in any::<bool>()) {
                    refusals::<$r, f64>(rule, n, &v, k, with_params)?;
                }
            }
        }
    )*};
}

gradstep::for_each_rule!(checkpoint_props);

// ---- Fuzzing: no byte string panics the decoder. ----

fn any_rule() -> impl Strategy<Value = AnyRule> {
    macro_rules! any_of {
        ($({ id: $id:literal, rule: $r:ident, $($rest:tt)* }),* $(,)?) => {
            prop_oneof![$($r::arb().prop_map(AnyRule::from)),*]
        };
    }
    gradstep::for_each_rule!(any_of)
}

/// A valid checkpoint of a random rule, scalar state (one steps can produce: the
/// encoder refuses any other) and arrays.
fn any_checkpoint() -> impl Strategy<Value = Vec<u8>> {
    (
        any_rule(),
        0usize..12,
        any::<bool>(),
        any::<bool>(),
        any::<u64>(),
        0.0f64..=1.0,
        f64::MIN_POSITIVE..=1.0,
        values(),
    )
        .prop_map(|(rule, n, f64s, with_params, step, x, y, v)| {
            let scalars = match rule.default_scalars() {
                AnyScalars::Step(_) => StepCount::new(step).into(),
                AnyScalars::NAdam(_) => NAdamScalars::new(step, x).into(),
                AnyScalars::Asgd(_) => AsgdScalars {
                    step,
                    eta: x,
                    mu: y,
                }
                .into(),
            };
            let slots = rule.state_slots();
            if f64s {
                let (p, _, s) = setup::<f64>(n, slots, &v, 0);
                encode_any_vec(&rule, &scalars, &s, with_params.then_some(&p[..]))
            } else {
                let (p, _, s) = setup::<f32>(n, slots, &v, 0);
                encode_any_vec(&rule, &scalars, &s, with_params.then_some(&p[..]))
            }
            .unwrap()
        })
}

#[derive(Clone, Debug)]
enum Mutation {
    Flip(usize, u8),
    Set(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Truncate(usize),
    Extend(Vec<u8>),
    Duplicate(usize, usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let bytes = || prop::collection::vec(any::<u8>(), 1..24);
    prop_oneof![
        4 => (any::<usize>(), 0u8..8).prop_map(|(i, b)| Mutation::Flip(i, b)),
        2 => (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Set(i, b)),
        1 => (any::<usize>(), bytes()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        1 => (any::<usize>(), 1usize..24).prop_map(|(i, k)| Mutation::Delete(i, k)),
        1 => any::<usize>().prop_map(Mutation::Truncate),
        1 => bytes().prop_map(Mutation::Extend),
        1 => (any::<usize>(), 1usize..64).prop_map(|(i, k)| Mutation::Duplicate(i, k)),
    ]
}

fn mutate(b: &mut Vec<u8>, m: &Mutation) {
    let at = |i: usize, len: usize| if len == 0 { 0 } else { i % len };
    match m {
        Mutation::Flip(i, bit) if !b.is_empty() => {
            let i = at(*i, b.len());
            b[i] ^= 1 << bit;
        }
        Mutation::Set(i, v) if !b.is_empty() => {
            let i = at(*i, b.len());
            b[i] = *v;
        }
        Mutation::Insert(i, bytes) => {
            let i = at(*i, b.len() + 1);
            b.splice(i..i, bytes.iter().copied());
        }
        Mutation::Delete(i, k) if !b.is_empty() => {
            let i = at(*i, b.len());
            b.drain(i..(i + k).min(b.len()));
        }
        Mutation::Truncate(i) => b.truncate(at(*i, b.len() + 1)),
        Mutation::Extend(bytes) => b.extend_from_slice(bytes),
        Mutation::Duplicate(i, k) if !b.is_empty() => {
            let i = at(*i, b.len());
            let piece = b[i..(i + k).min(b.len())].to_vec();
            b.splice(i..i, piece);
        }
        _ => {}
    }
}

/// Destination buffers as the header asks for, when it asks for a modest size.
fn dest<T: Real>(bytes: &[u8]) -> (Vec<Vec<T>>, Vec<T>, bool) {
    match checkpoint::peek(bytes) {
        Ok(h) if h.n <= 1 << 12 => (
            vec![vec![T::ZERO; h.n as usize]; h.slots],
            vec![T::ZERO; h.n as usize],
            h.has_params,
        ),
        _ => (vec![vec![T::ZERO; 3]; 2], vec![T::ZERO; 3], true),
    }
}

/// Every decoder on `bytes`: none may panic, and whatever decodes must re-encode to the
/// same bytes (every accepted byte string is one `encode` writes).
fn decode_everything<T: Element>(bytes: &[u8]) -> Result<(), TestCaseError> {
    let peeked = checkpoint::peek(bytes);
    let (mut state, mut params, has_params) = dest::<T>(bytes);
    let r = checkpoint::decode_any::<T>(bytes, &mut slices(&mut state), Some(&mut params));
    if let Ok((rule, scalars)) = r {
        let h = peeked.unwrap();
        prop_assert_eq!(h.rule, rule.id());
        let again = encode_any_vec(&rule, &scalars, &state, has_params.then_some(&params[..]))?;
        prop_assert_eq!(&again[..], &bytes[..h.len as usize]);
    }
    let r2 = checkpoint::decode_any::<T>(bytes, &mut slices(&mut state), None);
    prop_assert_eq!(r.is_ok(), r2.is_ok() && has_params);
    let _ = checkpoint::decode::<Adam, T>(bytes, &mut slices(&mut state), Some(&mut params));
    let _ = checkpoint::decode::<Sgd, T>(bytes, &mut slices(&mut state), None);
    let _ = checkpoint::decode::<Asgd, T>(bytes, &mut slices(&mut state), Some(&mut params));
    let _ = checkpoint::decode::<NAdam, T>(bytes, &mut slices(&mut state), None);
    Ok(())
}

fn decode_both(bytes: &[u8]) -> Result<(), TestCaseError> {
    decode_everything::<f32>(bytes)?;
    decode_everything::<f64>(bytes)
}

/// The rule section of a valid checkpoint, and its rule id.
fn valid_section() -> impl Strategy<Value = (u16, Vec<u8>)> {
    any_checkpoint().prop_map(|b| {
        let section = u32::from_le_bytes(b[20..24].try_into().unwrap()) as usize;
        (
            u16::from_le_bytes([b[6], b[7]]),
            b[32..32 + section].to_vec(),
        )
    })
}

/// A header of plausible fields (known and unknown values), a random body and a valid
/// checksum: reaches the checks behind the checksum.
fn forged() -> impl Strategy<Value = Vec<u8>> {
    (
        prop_oneof![4 => 1u16..=RuleId::ALL.len() as u16, 1 => any::<u16>()],
        prop_oneof![4 => 1u8..3, 1 => any::<u8>()],
        prop_oneof![4 => 0u8..2, 1 => any::<u8>()],
        prop_oneof![4 => 0u8..4, 1 => any::<u8>()],
        prop_oneof![8 => Just(0u8), 1 => any::<u8>()],
        prop_oneof![8 => Just(None), 1 => (5u32..10).prop_map(|w| Some(8 * w)), 1 => any::<u32>().prop_map(Some)],
        prop_oneof![4 => 0u64..8, 1 => any::<u64>()],
        any::<bool>(),
        prop::collection::vec(any::<u8>(), 0..400),
        valid_section(),
    )
        .prop_map(
            |(id, element, flags, slots, reserved, section, n, consistent, body, rule)| {
                // Mostly the rule's real section, so that decoding gets past it.
                let (id, section, body) = match (section, rule) {
                    (None, (rule_id, real)) => {
                        let len = real.len() as u32;
                        let mut b = real;
                        b.extend_from_slice(&body);
                        (rule_id, len, b)
                    }
                    (Some(section), _) => (id, section, body),
                };
                let mut b = Vec::with_capacity(32 + body.len() + 4);
                b.extend_from_slice(b"GSCK");
                b.extend_from_slice(&1u16.to_le_bytes());
                b.extend_from_slice(&id.to_le_bytes());
                b.extend_from_slice(&0u64.to_le_bytes());
                b.extend_from_slice(&[element, flags, slots, reserved]);
                b.extend_from_slice(&section.to_le_bytes());
                b.extend_from_slice(&n.to_le_bytes());
                b.extend_from_slice(&body);
                let size = if element == 1 { 4u64 } else { 8 };
                let arrays = (u64::from(slots) + u64::from(flags & 1)).saturating_mul(n);
                // Saturating: a forged `n` makes the arrays' size overflow `u64`, and such
                // a header is then simply not made consistent.
                let want = arrays
                    .saturating_mul(size)
                    .saturating_add(36 + u64::from(section));
                if consistent && want <= b.len() as u64 + 4 && want >= 36 {
                    b.resize(want as usize - 4, 0x5A);
                }
                let len = b.len() as u64 + 4;
                b[8..16].copy_from_slice(&len.to_le_bytes());
                b.extend_from_slice(&[0; 4]);
                fix_crc(&mut b);
                b
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(subjects::cases(4096)))]

    #[test]
    fn fuzz_random_bytes(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        decode_both(&bytes)?;
    }

    #[test]
    fn fuzz_random_bytes_after_a_valid_preamble(
        rest in prop::collection::vec(any::<u8>(), 0..600),
        true_length in any::<bool>(),
        fix in any::<bool>(),
    ) {
        let mut bytes = b"GSCK\x01\x00".to_vec();
        bytes.extend_from_slice(&rest);
        if true_length && bytes.len() >= 16 {
            let len = bytes.len() as u64;
            bytes[8..16].copy_from_slice(&len.to_le_bytes());
        }
        if fix {
            fix_crc(&mut bytes);
        }
        decode_both(&bytes)?;
    }

    #[test]
    fn fuzz_forged_headers(bytes in forged()) {
        decode_both(&bytes)?;
    }

    #[test]
    fn fuzz_mutated_checkpoints(
        valid in any_checkpoint(),
        mutations in prop::collection::vec(mutation(), 1..6),
        fix in any::<bool>(),
    ) {
        let mut bytes = valid;
        for m in &mutations {
            mutate(&mut bytes, m);
        }
        if fix {
            fix_crc(&mut bytes);
        }
        decode_both(&bytes)?;
    }
}

// ---- Fixed cases. ----

/// SGD, lr 0.1, momentum 0.9, n = 3 in f32, after 2 steps, with params. Any change to
/// these bytes is a change of the format, which needs a new format version.
const GOLDEN: &str = concat!(
    "4753434b",         // magic "GSCK"
    "0100",             // version 1
    "0100",             // rule 1: SGD
    "6c00000000000000", // length 108
    "01",
    "01",
    "01",
    "00",               // f32, params present, 1 slice, reserved
    "30000000",         // rule section: 48 bytes
    "0300000000000000", // n = 3
    "9a9999999999b93f", // lr 0.1
    "cdccccccccccec3f", // momentum 0.9
    "0000000000000000", // dampening 0
    "0000000000000000", // weight_decay 0
    "0000000000000000", // nesterov, maximize: off
    "0200000000000000", // step 2
    "3333333f",
    "ccccccbe",
    "cdcc8cbe", // momentum_buffer 0.7, -0.4, -0.275
    "ae47613f",
    "7b14eebf",
    "d7a3003f", // params 0.88, -1.86, 0.5025
    "9a70ecae", // CRC-32 0xaeec709a (= zlib.crc32)
);

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn golden_run() -> (Sgd, StepCount, [f32; 3], [f32; 3]) {
    let sgd = Sgd {
        lr: 0.1,
        momentum: 0.9,
        ..Sgd::default()
    };
    let (mut params, mut buf, mut scalars) =
        ([1.0f32, -2.0, 0.5], [0.0f32; 3], StepCount::default());
    for g in [[0.5f32, -1.0, 0.25], [0.25, 0.5, -0.5]] {
        sgd.step(&mut scalars, &mut params, &g, &mut [&mut buf])
            .unwrap();
    }
    (sgd, scalars, params, buf)
}

#[test]
fn golden_checkpoint() {
    let (sgd, scalars, params, buf) = golden_run();
    let mut out = [0u8; 256];
    let len = checkpoint::encode(&sgd, &scalars, &[&buf], Some(&params), &mut out).unwrap();
    assert_eq!(hex(&out[..len]), GOLDEN);
    let golden: Vec<u8> = (0..GOLDEN.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&GOLDEN[i..i + 2], 16).unwrap())
        .collect();
    let (mut b2, mut p2) = ([0.0f32; 3], [0.0f32; 3]);
    let (rule, s2) =
        checkpoint::decode::<Sgd, f32>(&golden, &mut [&mut b2], Some(&mut p2)).unwrap();
    assert_eq!((rule, s2, b2, p2), (sgd, scalars, buf, params));
    assert_eq!(s2.step, 2);
}

#[test]
fn negative_zero_and_nan_payloads_survive() {
    let sgd = Sgd {
        lr: -0.0,
        weight_decay: -0.0,
        momentum: 0.5,
        ..Sgd::default()
    };
    let buf = [f32::from_bits(0x7fc0_1234), -0.0, f32::from_bits(1)];
    let params = [f32::from_bits(0xffa0_0001), f32::NEG_INFINITY, 0.0];
    let mut out = [0u8; 128];
    let len = checkpoint::encode(
        &sgd,
        &StepCount::new(u64::MAX),
        &[&buf],
        Some(&params),
        &mut out,
    )
    .unwrap();
    let (mut b2, mut p2) = ([0.0f32; 3], [0.0f32; 3]);
    let (rule, s) =
        checkpoint::decode::<Sgd, f32>(&out[..len], &mut [&mut b2], Some(&mut p2)).unwrap();
    assert_eq!(rule.lr.to_bits(), (-0.0f64).to_bits());
    assert_eq!(rule.weight_decay.to_bits(), (-0.0f64).to_bits());
    assert_eq!(s.step, u64::MAX);
    let raw = |xs: &[f32]| xs.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(raw(&b2), raw(&buf));
    assert_eq!(raw(&p2), raw(&params));
}

#[test]
fn stateless_rule_without_params_has_no_arrays() {
    let sgd = Sgd::default();
    let mut out = [0u8; 128];
    let len = checkpoint::encode::<_, f64>(&sgd, &StepCount::new(7), &[], None, &mut out).unwrap();
    assert_eq!(len, 32 + 48 + 4);
    let h = checkpoint::peek(&out).unwrap();
    assert_eq!((h.n, h.slots, h.has_params), (0, 0, false));
    let (rule, s) = checkpoint::decode::<Sgd, f64>(&out[..len], &mut [], None).unwrap();
    assert_eq!((rule, s.step), (sgd, 7));
}

#[test]
fn encoded_len_overflow_is_an_error() {
    let adam = Adam {
        amsgrad: true,
        ..Adam::default()
    };
    assert_eq!(
        checkpoint::encoded_len(&adam, ElementType::F64, usize::MAX / 8, true),
        Err(Error::Checkpoint(CheckpointError::TooLarge))
    );
}

#[test]
fn errors_display_their_cause() {
    let cases = [
        (
            CheckpointError::BufferTooSmall {
                needed: 84,
                found: 10,
            },
            "checkpoint needs 84 bytes, the output buffer has 10",
        ),
        (
            CheckpointError::Truncated {
                needed: 84,
                found: 10,
            },
            "checkpoint truncated: 10 bytes, 84 needed",
        ),
        (
            CheckpointError::BadMagic,
            "not a gradstep checkpoint (bad magic)",
        ),
        (
            CheckpointError::UnsupportedVersion { found: 2 },
            "checkpoint format version 2 is not supported (this build reads 1)",
        ),
        (
            CheckpointError::ChecksumMismatch {
                stored: 0xdeadbeef,
                computed: 0x12,
            },
            "checkpoint corrupted: stored CRC-32 0xdeadbeef, computed 0x00000012",
        ),
        (
            CheckpointError::UnknownRule { found: 99 },
            "checkpoint has unknown rule id 99",
        ),
        (
            CheckpointError::WrongRule {
                expected: RuleId::Adam,
                found: RuleId::Sgd,
            },
            "checkpoint is of rule sgd, expected adam",
        ),
        (
            CheckpointError::WrongElementType {
                expected: ElementType::F32,
                found: ElementType::F64,
            },
            "checkpoint holds f64 elements, expected f32",
        ),
        (
            CheckpointError::InvalidField { field: "flags" },
            "malformed checkpoint: invalid flags",
        ),
        (
            CheckpointError::SlotCount {
                expected: 2,
                found: 3,
            },
            "checkpoint has 2 state slices, 3 destination slices given",
        ),
        (
            CheckpointError::LengthMismatch {
                section: Section::State(1),
                expected: 5,
                found: 4,
            },
            "state slice 1 has length 4, checkpoint has 5 elements",
        ),
        (
            CheckpointError::LengthMismatch {
                section: Section::Params,
                expected: 5,
                found: 4,
            },
            "params slice has length 4, checkpoint has 5 elements",
        ),
        (
            CheckpointError::ParamsAbsent,
            "checkpoint has no params section",
        ),
        (
            CheckpointError::TooLarge,
            "checkpoint length overflows usize",
        ),
        (
            CheckpointError::WrongScalars {
                rule: RuleId::NAdam,
            },
            "scalar state is not of the kind rule nadam keeps",
        ),
    ];
    for (e, text) in cases {
        assert_eq!(Error::Checkpoint(e).to_string(), text);
    }
}

/// A LAMB checkpoint written before LAMB had its Keras/pytorch_optimizer options (the
/// build of commit 405a717: lr 0.1, weight_decay 0.01, n = 3 in f32, 2 steps, with
/// params). The options are bits 1–4 of the option word, 0 here, so it loads as the
/// rule it was (every option off), and encoding that rule again gives the same bytes:
/// the layout did not change and needs no migration.
const LAMB_BEFORE_OPTIONS: &str = concat!(
    "4753434b01000f00800000000000000001010200380000000300000000000000",
    "9a9999999999b93fcdccccccccccec3f2b8716d9cef7ef3f8dedb5a0f7c6b03e",
    "7b14ae47e17a843f00000000000000000200000000000000",
    "295c8f3d09d723bdaf47e1bc", // mu
    "7db5a3397db5a33aa7cea339", // nu
    "b51d2e3f8aa5e7bfd0c0e13e", // params
    "2f9f0c24",                 // CRC-32
);

#[test]
fn lamb_checkpoint_from_before_the_options_loads() {
    let bytes: Vec<u8> = (0..LAMB_BEFORE_OPTIONS.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&LAMB_BEFORE_OPTIONS[i..i + 2], 16).unwrap())
        .collect();
    let (mut m, mut v, mut p) = ([0.0f32; 3], [0.0f32; 3], [0.0f32; 3]);
    let (rule, scalars) =
        checkpoint::decode::<Lamb, f32>(&bytes, &mut [&mut m, &mut v], Some(&mut p)).unwrap();
    let expected = Lamb {
        lr: 0.1,
        weight_decay: 0.01,
        ..Lamb::default()
    };
    assert_eq!(rule, expected);
    assert_eq!(scalars.step, 2);
    assert_eq!(p.map(f32::to_bits), [1059986869, 3219629450, 1054982352]);
    assert_eq!(m.map(f32::to_bits), [1032805417, 3173242633, 3168880559]);
    assert_eq!(v.map(f32::to_bits), [967030141, 983807357, 967036583]);
    // Today's build takes the same steps from the same start and writes the same bytes.
    let (mut params, mut m2, mut v2, mut s) = (
        [1.0f32, -2.0, 0.5],
        [0.0f32; 3],
        [0.0f32; 3],
        StepCount::default(),
    );
    for g in [[0.5f32, -1.0, 0.25], [0.25, 0.5, -0.5]] {
        expected
            .step(&mut s, &mut params, &g, &mut [&mut m2, &mut v2])
            .unwrap();
    }
    let mut out = [0u8; 256];
    let len = checkpoint::encode(&expected, &s, &[&m2, &v2], Some(&params), &mut out).unwrap();
    assert_eq!(hex(&out[..len]), LAMB_BEFORE_OPTIONS);
    // With an option on, bit 1.. is set: an older build refuses it as an unknown bit.
    let keras = Lamb {
        decoupled_weight_decay: true,
        ..expected
    };
    let len = checkpoint::encode(&keras, &s, &[&m2, &v2], Some(&params), &mut out).unwrap();
    assert_eq!(len, bytes.len());
    let word = u64::from_le_bytes(out[32 + 5 * 8..32 + 6 * 8].try_into().unwrap());
    assert_eq!(word, 0b10);
    let (back, _) =
        checkpoint::decode::<Lamb, f32>(&out[..len], &mut [&mut m, &mut v], Some(&mut p)).unwrap();
    assert_eq!(back, keras);
}
