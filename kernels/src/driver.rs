//! The one loop every rule runs: load lanes, apply the rule's element kernel, store.
//!
//! The body of the slices runs on the target's widest lanes, the remainder on one-lane
//! scalars, both through the same generic kernel, so tails need no special code and
//! give the same bits as the body would.
//!
//! A rule reaches the loop through [`Drive::run`], called once per step from its
//! [`Rule::run`](crate::rules::Rule::run) with the kernel its options select.
//!
//! [`Kernel`] and [`Drive`] are `pub` only so that the public [`Rule`](crate::rules::Rule)
//! trait can name them; this module is private, so other crates can neither name nor
//! implement them (the rules are the crate's own).

use crate::arch::LaneFn;
use crate::error::{Buffer, Error};
use crate::lanes::{Lanes, LoadStore};
use crate::real::Real;
use crate::reduce::{BLOCK, ExactSum, Total, VIRTUAL_LANES};
use crate::rules::check_buffers;

/// The per-element update of a rule, with its per-step scalars already computed.
///
/// `K` is the number of state slices the rule uses with its current options.
pub trait Kernel<T: Real, const K: usize>: Copy {
    /// Updates one group of lanes: `p` (params) in place, given `g` (grads) and the
    /// rule's state `s`, also in place.
    fn apply<V: Lanes<Scalar = T>>(&self, p: &mut V, g: V, s: &mut [V; K]);

    /// Whether [`Kernel::apply`] changes `p`. A kernel that only reads it (LAMB's
    /// moments pass) says `false`, and the loop does not store the params back: a store
    /// of the unchanged value still dirties the line, which then goes back to memory.
    const WRITES_PARAMS: bool = true;

    /// Whether [`Kernel::apply`] changes the state; `false` (LAMB's update pass, which
    /// reads the moments) leaves the state slices unwritten, as `WRITES_PARAMS` does the
    /// params. A kernel that says `false` and changes them anyway loses the change.
    const WRITES_STATE: bool = true;
}

/// A rule's kernel with its options in their common state (no `maximize`, no weight
/// decay, ...), as the rule's `PLAIN` instantiation of its update, in which the option
/// checks are constants and vanish.
///
/// The options are loop-invariant, but LLVM unswitches only small loops, so a kernel with
/// several options otherwise tests each one per element: on a scalar core that is a
/// compare and a conditional move per option and element (SGD-momentum on a Cortex-M4F:
/// 32 instructions per parameter instead of 9). Rules pick this wrapper at run time when
/// their options allow; the results are the same bits either way. `VARIANT` selects
/// among a rule's common states (SGD: Nesterov or not; Adam: decoupled decay or none).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Plain<C, const VARIANT: u8 = 0>(pub(crate) C);

/// The two kernels of a rule whose coefficients `$coeffs<T>` have an element update
/// `update::<V, PLAIN>(p, g, state)` over `$k` slots: `$coeffs` tests its options per
/// element (`PLAIN` false), `Plain<$coeffs>` has them as constants (`PLAIN` true).
macro_rules! general_and_plain_kernels {
    ($coeffs:ident, $k:literal) => {
        impl<T: $crate::real::Real> $crate::driver::Kernel<T, $k> for $coeffs<T> {
            #[inline(always)]
            fn apply<V: $crate::lanes::Lanes<Scalar = T>>(&self, p: &mut V, g: V, s: &mut [V; $k]) {
                self.update::<V, false>(p, g, s);
            }
        }

        impl<T: $crate::real::Real> $crate::driver::Kernel<T, $k>
            for $crate::driver::Plain<$coeffs<T>>
        {
            #[inline(always)]
            fn apply<V: $crate::lanes::Lanes<Scalar = T>>(&self, p: &mut V, g: V, s: &mut [V; $k]) {
                self.0.update::<V, true>(p, g, s);
            }
        }
    };
}
pub(crate) use general_and_plain_kernels;

/// Where a rule's element kernel runs: the buffers of one step, already checked.
///
/// [`Rule::run`](crate::rules::Rule::run) computes the step's coefficients and calls
/// [`Drive::run`] exactly once, with the kernel its options select (a [`Plain`]
/// specialisation or the general kernel) and its slot count `K`. That call is the single
/// entry point from every rule into the element loop, and [`run`] the single place it
/// reaches the lanes: through `crate::arch::Dispatch`, which on x86-64 picks the
/// `#[target_feature]` instantiation (AVX-512F, AVX2) or SSE2/scalar lanes that
/// [`crate::isa`] selected, for every rule without a rule changing.
pub trait Drive<T: Real> {
    /// What the call gives back to the caller of [`Rule::run`](crate::rules::Rule::run).
    type Out;

    /// Fills state slot `k` with `init[k]` if the state is fresh and `init` is given
    /// (`None`: the kernel itself initializes the state on the first step), then runs
    /// `kernel` over every element.
    fn run<const K: usize, F: Kernel<T, K>>(self, kernel: &F, init: Option<[T; K]>) -> Self::Out;

    /// The two-pass shape of the layer-wise rules (LAMB; LARS), whose update is scaled
    /// by a ratio of norms over the whole slice: fills the state as [`Drive::run`]
    /// does, runs `first` over every element (it updates the state and must leave the
    /// params as they are) and, in the same sweep, sums the squares of the two
    /// [`Norms::terms`] of every element from the values `first` left ([`first_pass`]:
    /// the same bits on every target and instruction set), and finally runs one of the
    /// two kernels `second` builds from the two sums: the first (`B`) computes the
    /// update again from the state; the second (`C`) takes it from scratch memory,
    /// where a drive that has some ([`Scratch`]) stored each element's second norm
    /// term during the first pass, in the lanes' `g` (its params are the params, and
    /// it has no state). Both must give the same bits.
    fn run_two_pass<const K: usize, A, N, B, C>(
        self,
        first: &A,
        init: Option<[T; K]>,
        norms: &N,
        second: impl FnOnce([f64; 2]) -> (B, C),
    ) -> Self::Out
    where
        A: Kernel<T, K>,
        N: Norms<T, K>,
        B: Kernel<T, K>,
        C: Kernel<T, 0>;
}

/// What one element contributes to the two sums of squares of a layer-wise rule
/// ([`Drive::run_two_pass`]): LAMB's parameter and update, `(θ, u)`.
pub trait Norms<T: Real, const K: usize>: Copy {
    /// The two values whose squares are summed, from an element's param, gradient and
    /// state as the first pass left them.
    fn terms<V: Lanes<Scalar = T>>(&self, p: V, g: V, s: &[V; K]) -> [V; 2];
}

/// The [`Drive`] of [`Rule::step`](crate::rules::Rule::step): the caller's buffers.
pub(crate) struct Buffers<'a, 'b, T> {
    params: &'a mut [T],
    grads: &'a [T],
    state: &'a mut [&'b mut [T]],
    fresh: bool,
}

impl<'a, 'b, T> Buffers<'a, 'b, T> {
    /// `fresh`: the state slices hold garbage and the step initializes them.
    pub(crate) fn new(
        params: &'a mut [T],
        grads: &'a [T],
        state: &'a mut [&'b mut [T]],
        fresh: bool,
    ) -> Self {
        Buffers {
            params,
            grads,
            state,
            fresh,
        }
    }
}

impl<T: Real> Drive<T> for Buffers<'_, '_, T> {
    /// The lengths and the slot count are checked here, against the kernel's `K`, before
    /// anything is written: with `K` a constant the check is unrolled, and the shell
    /// around the element loop stays free of loops (a loop over the state slices next
    /// to the element loop costs LLVM's unswitching budget, and Adamax 8 instructions
    /// per parameter on a Cortex-M4F).
    type Out = Result<(), Error>;

    /// On x86-64 inlined into the rule's `run` (one call site per kernel type, so no
    /// code is duplicated): called, it received the kernel by address, and the rule's
    /// copy of its coefficients into the wrapper it passes read 16-byte words that
    /// narrower stores had just written, a store-forwarding stall of ~10 ns per step
    /// (f32 Adam at 16 params: 30 % of its per-step cost was that copy). There the
    /// element loop is a `#[target_feature]` function of its own either way. Elsewhere
    /// the loop is compiled into this function, and inlined into the rule's it cost the
    /// Cortex-M4F 0.75 (Adam) to 1.25 (AdamW) instructions per parameter in registers
    /// spilled, more than the per-step stall (firmware bench).
    #[cfg_attr(target_arch = "x86_64", inline(always))]
    fn run<const K: usize, F: Kernel<T, K>>(
        self,
        kernel: &F,
        init: Option<[T; K]>,
    ) -> Result<(), Error> {
        let slots = checked_slots(self.params, self.grads, self.state, self.fresh, init)?;
        run(kernel, self.params, self.grads, slots);
        Ok(())
    }

    fn run_two_pass<const K: usize, A, N, B, C>(
        self,
        first: &A,
        init: Option<[T; K]>,
        norms: &N,
        second: impl FnOnce([f64; 2]) -> (B, C),
    ) -> Result<(), Error>
    where
        A: Kernel<T, K>,
        N: Norms<T, K>,
        B: Kernel<T, K>,
        C: Kernel<T, 0>,
    {
        let mut slots = checked_slots(self.params, self.grads, self.state, self.fresh, init)?;
        let sums = first_pass(
            first,
            norms,
            self.params,
            self.grads,
            slots.each_mut().map(|s| &mut **s),
            None,
        );
        run(&second(sums.values()).0, self.params, self.grads, slots);
        Ok(())
    }
}

/// The [`Drive`] of [`Rule::step_scratch`](crate::rules::Rule::step_scratch): the
/// caller's buffers and a scratch slice as long as the params, in which a layer-wise
/// rule's first pass stores each element's update (LAMB's `u`) so that its second pass
/// reads it instead of computing it again from the state (the same bits, half the
/// divider's work: LAMB's u takes a square root and a division per element). Only the
/// layer-wise rules step through it: `Rule::step_scratch` gives the elementwise ones
/// their own step (through this drive each of their kernels was compiled again).
pub(crate) struct Scratch<'a, 'b, T> {
    pub(crate) buffers: Buffers<'a, 'b, T>,
    pub(crate) scratch: &'a mut [T],
}

/// `Err` unless `scratch` is as long as the params (`n`).
pub(crate) fn check_scratch<T>(n: usize, scratch: &[T]) -> Result<(), Error> {
    if scratch.len() != n {
        return Err(Error::LengthMismatch {
            buffer: Buffer::Scratch,
            expected: n,
            found: scratch.len(),
        });
    }
    Ok(())
}

impl<T: Real> Drive<T> for Scratch<'_, '_, T> {
    type Out = Result<(), Error>;

    /// [`Buffers`]' `run`, after the scratch's length is checked (a layer-wise rule's
    /// step does not call `run`: not reached).
    fn run<const K: usize, F: Kernel<T, K>>(
        self,
        kernel: &F,
        init: Option<[T; K]>,
    ) -> Result<(), Error> {
        check_scratch(self.buffers.params.len(), self.scratch)?;
        self.buffers.run(kernel, init)
    }

    fn run_two_pass<const K: usize, A, N, B, C>(
        self,
        first: &A,
        init: Option<[T; K]>,
        norms: &N,
        second: impl FnOnce([f64; 2]) -> (B, C),
    ) -> Result<(), Error>
    where
        A: Kernel<T, K>,
        N: Norms<T, K>,
        B: Kernel<T, K>,
        C: Kernel<T, 0>,
    {
        let (b, scratch) = (self.buffers, self.scratch);
        let slots = checked_with_scratch(b.params, b.grads, b.state, b.fresh, init, Some(scratch))?;
        let sums = first_pass(first, norms, b.params, b.grads, slots, Some(&mut *scratch));
        run(&second(sums.values()).1, b.params, scratch, []);
        Ok(())
    }
}

/// A layer-wise rule's two sums of squares (LAMB's `Σθ²` and `Σu²`) over one part of a
/// tensor, from [`AnyRule::step_norms_part`](crate::rules::AnyRule::step_norms_part).
///
/// The sums are exact (a fixed-point integer wide enough for any `f64`, rounded once
/// when the step reads them), so [`NormSums::merge`] of the parts' sums, in any order,
/// gives the bits of one sum over the whole tensor: a step cut into parts on several
/// threads equals the one-call step bit for bit, as long as every part but the last
/// holds a multiple of [`NORM_PART_ALIGN`] elements (the summation's blocks; other cuts
/// give a valid step whose norms may differ in their last bits).
#[derive(Clone, Copy, Debug)]
pub struct NormSums {
    sums: [ExactSum; 2],
}

/// The element count that every part of a tensor but its last must be a multiple of for
/// a step in parts to give the one-call step's bits ([`NormSums`]): the norms' 16
/// virtual lanes are added to a compensated `f64` total every 256 elements, and that
/// total to the exact sum every `NORM_PART_ALIGN` elements (16 blocks: 4096).
pub const NORM_PART_ALIGN: usize = 16 * BLOCK;

impl NormSums {
    /// No part yet: both sums 0.
    pub const EMPTY: NormSums = NormSums {
        sums: [ExactSum::ZERO; 2],
    };

    /// Adds another part's sums, exactly.
    pub fn merge(&mut self, other: &NormSums) {
        for (s, o) in self.sums.iter_mut().zip(other.sums.iter()) {
            s.merge(o);
        }
    }

    /// The two sums, each rounded once to the nearest `f64`.
    pub fn values(&self) -> [f64; 2] {
        self.sums.each_ref().map(ExactSum::value)
    }
}

impl Default for NormSums {
    fn default() -> Self {
        NormSums::EMPTY
    }
}

/// The [`Drive`] of the first part of a layer-wise rule's step over one part of a tensor:
/// initializes fresh state, runs the first pass (the moments) and sums the part's norms;
/// the params are left as they are. With a scratch slice, stores each element's update
/// there for the second part (as [`Scratch`] does).
pub(crate) struct NormsPart<'a, 'b, T> {
    pub(crate) buffers: Buffers<'a, 'b, T>,
    pub(crate) scratch: Option<&'a mut [T]>,
    /// What a single-pass rule's `run` returns (the shell refuses those rules first).
    pub(crate) refuse: Error,
}

impl<T: Real> Drive<T> for NormsPart<'_, '_, T> {
    type Out = Result<NormSums, Error>;

    /// An elementwise rule has no first part (the shell refuses it before this).
    fn run<const K: usize, F: Kernel<T, K>>(
        self,
        _kernel: &F,
        _init: Option<[T; K]>,
    ) -> Result<NormSums, Error> {
        Err(self.refuse)
    }

    fn run_two_pass<const K: usize, A, N, B, C>(
        self,
        first: &A,
        init: Option<[T; K]>,
        norms: &N,
        _second: impl FnOnce([f64; 2]) -> (B, C),
    ) -> Result<NormSums, Error>
    where
        A: Kernel<T, K>,
        N: Norms<T, K>,
        B: Kernel<T, K>,
        C: Kernel<T, 0>,
    {
        let b = self.buffers;
        let slots = checked_with_scratch(
            b.params,
            b.grads,
            b.state,
            b.fresh,
            init,
            self.scratch.as_deref(),
        )?;
        Ok(first_pass(
            first,
            norms,
            b.params,
            b.grads,
            slots,
            self.scratch,
        ))
    }
}

/// The [`Drive`] of the second part of a layer-wise rule's step over one part of a
/// tensor: the update from the merged sums of every part (the state as the first part
/// left it; nothing is initialized), with a scratch slice from the updates the first
/// part stored there.
pub(crate) struct ApplyPart<'a, 'b, T> {
    pub(crate) buffers: Buffers<'a, 'b, T>,
    pub(crate) scratch: Option<&'a mut [T]>,
    pub(crate) sums: [f64; 2],
    /// What a single-pass rule's `run` returns (the shell refuses those rules first).
    pub(crate) refuse: Error,
}

impl<T: Real> Drive<T> for ApplyPart<'_, '_, T> {
    type Out = Result<(), Error>;

    /// An elementwise rule has no second part (the shell refuses it before this).
    fn run<const K: usize, F: Kernel<T, K>>(
        self,
        _kernel: &F,
        _init: Option<[T; K]>,
    ) -> Result<(), Error> {
        Err(self.refuse)
    }

    fn run_two_pass<const K: usize, A, N, B, C>(
        self,
        _first: &A,
        init: Option<[T; K]>,
        _norms: &N,
        second: impl FnOnce([f64; 2]) -> (B, C),
    ) -> Result<(), Error>
    where
        A: Kernel<T, K>,
        N: Norms<T, K>,
        B: Kernel<T, K>,
        C: Kernel<T, 0>,
    {
        let b = self.buffers;
        let slots = checked_with_scratch(
            b.params,
            b.grads,
            b.state,
            b.fresh,
            init,
            self.scratch.as_deref(),
        )?;
        let (from_state, from_scratch) = second(self.sums);
        match self.scratch {
            Some(scratch) => run(&from_scratch, b.params, scratch, []),
            None => run(&from_state, b.params, b.grads, slots),
        }
        Ok(())
    }
}

/// The checked state slots of a [`Drive`] call over `params` and `grads`, filled with
/// `init` when `fresh`.
#[cfg_attr(target_arch = "x86_64", inline(always))]
fn checked_slots<'s, T: Real, const K: usize>(
    params: &[T],
    grads: &[T],
    state: &'s mut [&mut [T]],
    fresh: bool,
    init: Option<[T; K]>,
) -> Result<[&'s mut [T]; K], Error> {
    check_buffers(params, grads, state, K)?;
    let found = state.len();
    let slots: &mut [&mut [T]; K] = state
        .try_into()
        .map_err(|_| Error::StateSlots { expected: K, found })?;
    let mut slots = slots.each_mut().map(|s| &mut **s);
    if let (true, Some(init)) = (fresh, init) {
        for (slot, value) in slots.iter_mut().zip(init) {
            // A store loop, not `memset`: inlined into the rule's `run` the value is a
            // known zero, which LLVM fills with a call to `memset`. The C stress test's
            // ThreadSanitizer sees the library's libc calls but not its atomics (the
            // library is not instrumented), so a state filled by `memset` on one thread
            // and freed on another after the handle's release/acquire looked like a
            // race (frontend-ffi/tests/c/stress.c, case 3). The handle's ordering is
            // checked by Miri's race detector instead (frontend-ffi `registry` tests).
            // Elsewhere `run` is not inlined and the value is not known; there the
            // `black_box` changed the registers of the element loop compiled beside it
            // (Cortex-M4F Adadelta 24.7 → 33.9 instructions per parameter).
            #[cfg(target_arch = "x86_64")]
            let value = core::hint::black_box(value);
            slot.fill(value);
        }
    }
    Ok(slots)
}

/// [`checked_slots`], after `scratch`'s length if there is one: first, since
/// `checked_slots` fills fresh state.
#[inline(always)]
fn checked_with_scratch<'s, T: Real, const K: usize>(
    params: &[T],
    grads: &[T],
    state: &'s mut [&mut [T]],
    fresh: bool,
    init: Option<[T; K]>,
    scratch: Option<&[T]>,
) -> Result<[&'s mut [T]; K], Error> {
    if let Some(scratch) = scratch {
        check_scratch(params.len(), scratch)?;
    }
    checked_slots(params, grads, state, fresh, init)
}

/// A layer-wise rule's first pass: runs `first` over every element and, from the values
/// it leaves, sums `Σ a²` and `Σ b²` for `[a, b] = norms.terms(p, g, s)`, in one sweep
/// over the buffers (LAMB: the moments, then the norms of θ and of the update from them
/// while they are in registers, instead of a second pass that reads θ and both moments
/// again). `first` gives the same bits here as in [`run`]: the lanes and the scalar tail
/// compute the same IEEE operations.
///
/// The sums are in the order of `crate::reduce`'s reductions, so that they are the same
/// bits on every target and instruction set: element `i` goes to virtual lane `i mod 16`,
/// each virtual lane sums its squares in index order in the element type, and after
/// every 256 elements (and after the last) the 16 lanes are added, in lane order, to an
/// `f64` total with Neumaier's compensation, and every [`NORM_PART_ALIGN`] elements (and
/// after the last) that total, its value and its compensation, goes exactly into the
/// [`NormSums`], which the step rounds to `f64` once. With `store`, the second term of
/// every element (LAMB's u) is stored there too, for a second pass from scratch memory
/// ([`Scratch`]); its length is the caller's to check (a shorter one shortens the pass,
/// which cannot then go out of bounds). The body runs on the lanes of the
/// selected instruction set (`crate::arch::Dispatch::with_lanes`, as `crate::reduce`
/// does), the ragged end of each block on scalars. (It ran on the build's compile-time
/// lanes before: SSE2 in a default x86-64 build, where LAMB's norm pass was 56 % of its
/// step and the whole step 0.84–0.86 of a `-C target-cpu=native` build's at 4K and 64K.)
#[inline(always)]
pub(crate) fn first_pass<T, const K: usize, A, N>(
    first: &A,
    norms: &N,
    params: &mut [T],
    grads: &[T],
    state: [&mut [T]; K],
    store: Option<&mut [T]>,
) -> NormSums
where
    T: Real,
    A: Kernel<T, K>,
    N: Norms<T, K>,
{
    struct Call<'a, A, N, T, const K: usize, const STORE: bool> {
        first: &'a A,
        norms: &'a N,
        p: *mut T,
        g: *const T,
        s: [*mut T; K],
        u: *mut T,
        n: usize,
    }
    impl<T: Real, const K: usize, const STORE: bool, A: Kernel<T, K>, N: Norms<T, K>> LaneFn<T>
        for Call<'_, A, N, T, K, STORE>
    {
        type Output = NormSums;
        #[inline(always)]
        fn call<V: Lanes<Scalar = T> + LoadStore<T>>(self) -> NormSums {
            // SAFETY: the pointers and `n` come from `raw_buffers`: valid for `n`
            // elements, not overlapping; with `STORE`, `u` too (`n` is at most the
            // store's length).
            unsafe {
                first_pass_lanes::<V, T, K, STORE, A, N>(
                    self.first, self.norms, self.p, self.g, self.s, self.u, self.n,
                )
            }
        }
    }
    // As in `run`: the kernel's flags stay loop-invariant values.
    let first = &core::hint::black_box(*first);
    let (p, g, s, n) = raw_buffers(params, grads, state);
    let stores = store.is_some();
    let (u, n) = match store {
        Some(u) => (u.as_mut_ptr(), n.min(u.len())),
        None => (core::ptr::null_mut(), n),
    };
    #[rustfmt::skip]
    let sums = match stores {
        true => T::with_lanes(Call::<A, N, T, K, true> { first, norms, p, g, s, u, n }),
        false => T::with_lanes(Call::<A, N, T, K, false> { first, norms, p, g, s, u, n }),
    };
    sums
}

/// [`first_pass`] on lanes `V`; with `STORE`, each element's second norm term is
/// stored at `u`.
///
/// # Safety
/// `p`, `g`, every `s[k]` and, with `STORE`, `u` must be valid for `n` elements and
/// must not overlap.
#[inline(always)]
unsafe fn first_pass_lanes<V, T, const K: usize, const STORE: bool, A, N>(
    first: &A,
    norms: &N,
    p: *mut T,
    g: *const T,
    s: [*mut T; K],
    u: *mut T,
    n: usize,
) -> NormSums
where
    V: Lanes<Scalar = T> + LoadStore<T>,
    T: Real,
    A: Kernel<T, K>,
    N: Norms<T, K>,
{
    // (`norms_step` checks at compile time that V's width divides the 16 lanes.)
    let mut sums = [ExactSum::ZERO; 2];
    let mut totals = [Total::ZERO; 2];
    // Both totals in one loop, lane by lane: each total is a chain of dependent
    // additions, and two chains side by side overlap (one after the other, the fold
    // was about a quarter of the pass at 4K on x86-64). The order of each total's additions,
    // and so its bits, is unchanged.
    // Lanes `from..16` of both arrays, into the two totals.
    let fold = |lanes: &[[T; VIRTUAL_LANES]; 2], totals: &mut [Total; 2], from: usize| {
        let [mut a, mut b] = *totals;
        for (&x, &y) in lanes[0].iter().zip(&lanes[1]).skip(from) {
            a.add(x.to_f64());
            b.add(y.to_f64());
        }
        *totals = [a, b];
    };
    // On vector lanes (cores that run instructions out of order) a block's fold waits
    // for the next block and runs inside its vector loop, one lane of each total per
    // vector step: the scalar chains of the fold then overlap the vector work instead of
    // following it (without the fold at all, LAMB's step ran ×1.19 faster at 4K on a
    // Zen 5). The totals still add the same lanes in the same order, block after block.
    // The block that ends at a `NORM_PART_ALIGN` boundary, or the last, folds at once:
    // its totals go into the exact sums right after.
    let interleave = V::WIDTH > 1;
    let mut pending: Option<[[T; VIRTUAL_LANES]; 2]> = None;
    let mut start = 0;
    while start < n {
        let end = n.min(start + BLOCK);
        let mut lanes = [[T::ZERO; VIRTUAL_LANES]; 2];
        let body = start + (end - start) / V::WIDTH * V::WIDTH;
        let mut i = start;
        if let Some(previous) = pending.take() {
            let [mut a, mut b] = totals;
            let mut j = 0;
            while i < body && j < VIRTUAL_LANES {
                // SAFETY: i + WIDTH <= body <= n (see `norms_step`).
                unsafe {
                    norms_step::<V, T, K, STORE, A, N>(
                        first, norms, p, g, s, u, start, i, &mut lanes,
                    )
                };
                a.add(previous[0][j].to_f64());
                b.add(previous[1][j].to_f64());
                i += V::WIDTH;
                j += 1;
            }
            totals = [a, b];
            // A block too short for one vector step per lane folds the rest here.
            fold(&previous, &mut totals, j);
        }
        while i < body {
            // SAFETY: i + WIDTH <= body <= n, within every buffer (the caller's
            // guarantee).
            unsafe {
                norms_step::<V, T, K, STORE, A, N>(first, norms, p, g, s, u, start, i, &mut lanes)
            };
            i += V::WIDTH;
        }
        while i < end {
            // SAFETY: i < n.
            unsafe {
                norms_step::<T, T, K, STORE, A, N>(first, norms, p, g, s, u, start, i, &mut lanes)
            };
            i += 1;
        }
        // Every NORM_PART_ALIGN elements from the slice's start, and after the last,
        // the compensated totals go into the exact sums.
        let flush = end.is_multiple_of(NORM_PART_ALIGN) || end == n;
        if interleave && !flush {
            pending = Some(lanes);
        } else {
            fold(&lanes, &mut totals, 0);
        }
        if flush {
            for (sum, total) in sums.iter_mut().zip(totals.iter_mut()) {
                sum.add_total(total);
                *total = Total::ZERO;
            }
        }
        start = end;
    }
    NormSums { sums }
}

/// One step of [`first_pass`] at element `i` of the block that starts at `start`, on lanes
/// `W` (a vector, or one scalar for the block's ragged end): runs `first` and adds the
/// squares of the norm terms to the virtual lanes `(i − start) mod 16`; with `STORE`,
/// stores the second term at `u`.
///
/// # Safety
/// `i..i + W::WIDTH` must be in bounds of `p`, `g`, every `s[k]` and, with `STORE`,
/// `u`, and `i − start` a multiple of `W::WIDTH`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn norms_step<W, T, const K: usize, const STORE: bool, A, N>(
    first: &A,
    norms: &N,
    p: *mut T,
    g: *const T,
    s: [*mut T; K],
    u: *mut T,
    start: usize,
    i: usize,
    lanes: &mut [[T; VIRTUAL_LANES]; 2],
) where
    W: Lanes<Scalar = T> + LoadStore<T>,
    T: Real,
    A: Kernel<T, K>,
    N: Norms<T, K>,
{
    const {
        assert!(W::WIDTH <= VIRTUAL_LANES && VIRTUAL_LANES.is_multiple_of(W::WIDTH));
    }
    let lane = (i - start) % VIRTUAL_LANES;
    // SAFETY: the caller's bounds; `lane` is a multiple of WIDTH and WIDTH divides 16,
    // so lane + WIDTH <= 16 and the lane group is in bounds of the arrays of 16.
    unsafe {
        let (pv, gv, sv) = step_at::<W, T, T, T, K, A>(first, p, g, s, i);
        let terms = norms.terms(pv, gv, &sv);
        if STORE {
            <W as LoadStore<T>>::store(terms[1], u.add(i));
        }
        for (x, acc) in terms.into_iter().zip(lanes.iter_mut()) {
            let at = acc.as_mut_ptr().add(lane);
            let sum = <W as LoadStore<T>>::load(at) + x * x;
            sum.store(at);
        }
    }
}

/// Runs `kernel` over every element. The lengths are checked by the caller; this
/// function still uses the shortest of them so that no call can read or write out of
/// bounds.
#[inline(always)]
pub(crate) fn run<T, const K: usize, F>(
    kernel: &F,
    params: &mut [T],
    grads: &[T],
    state: [&mut [T]; K],
) where
    T: Real,
    F: Kernel<T, K>,
{
    // The kernel's fields are per-step values: keep LLVM from re-deriving its flags
    // inside the loop. Several are `f64` comparisons (`weight_decay != 0.0`, `|w| < 0.5`)
    // that CodeGenPrepare sinks next to their per-element uses because it deems compares
    // cheap; without an f64 unit (Cortex-M4F, M0) each is a soft-float library call per
    // element (measured: 30+ instructions per parameter on the M4F). Opaque, they are
    // plain loop-invariant values that are loaded once.
    let kernel = &core::hint::black_box(*kernel);
    let (p, g, s, n) = raw_buffers(params, grads, state);
    // SAFETY: `raw_buffers`' pointers are valid for `n` elements and do not overlap.
    unsafe { T::run_dispatched::<K, F>(kernel, p, g, s, n) }
}

/// The buffers of one step as raw pointers, with the shortest length `n`: every pointer
/// is valid for `n` elements, and they do not alias (`params` and each state slice are
/// distinct `&mut` borrows, `grads` a shared borrow that cannot overlap them). The
/// lengths are checked by the caller; using the shortest keeps any loop over `n` in
/// bounds regardless.
#[inline(always)]
fn raw_buffers<T, const K: usize>(
    params: &mut [T],
    grads: &[T],
    state: [&mut [T]; K],
) -> (*mut T, *const T, [*mut T; K], usize) {
    let mut n = params.len().min(grads.len());
    for s in state.iter() {
        n = n.min(s.len());
    }
    let s = state.map(|s| s.as_mut_ptr());
    (params.as_mut_ptr(), grads.as_ptr(), s, n)
}

/// The loop itself, generic over the lane type and over how each buffer is stored.
///
/// # Safety
/// `p`, `g` and every `s[k]` must be valid for `n` elements and must not overlap.
#[inline(always)]
pub(crate) unsafe fn run_lanes<V, P, G, S, const K: usize, F>(
    kernel: &F,
    p: *mut P,
    g: *const G,
    s: [*mut S; K],
    n: usize,
) where
    V: LoadStore<P> + LoadStore<G> + LoadStore<S>,
    V::Scalar: LoadStore<P> + LoadStore<G> + LoadStore<S>,
    F: Kernel<V::Scalar, K>,
{
    let body = n - n % V::WIDTH;
    let mut i = 0;
    while i < body {
        // SAFETY: i + WIDTH <= body <= n, so every access is in bounds.
        unsafe { step_at::<V, P, G, S, K, F>(kernel, p, g, s, i) };
        i += V::WIDTH;
    }
    while i < n {
        // SAFETY: i < n.
        unsafe { step_at::<V::Scalar, P, G, S, K, F>(kernel, p, g, s, i) };
        i += 1;
    }
}

/// Loads lanes at offset `i`, applies the kernel, stores back what it writes, and
/// returns the values it left ([`first_pass`] sums their norms).
///
/// # Safety
/// `i..i + W::WIDTH` must be in bounds of every buffer.
#[inline(always)]
unsafe fn step_at<W, P, G, S, const K: usize, F>(
    kernel: &F,
    p: *mut P,
    g: *const G,
    s: [*mut S; K],
    i: usize,
) -> (W, W, [W; K])
where
    W: LoadStore<P> + LoadStore<G> + LoadStore<S>,
    F: Kernel<W::Scalar, K>,
{
    // SAFETY: the caller guarantees i..i+WIDTH is in bounds of each buffer.
    unsafe {
        let mut pv = <W as LoadStore<P>>::load(p.add(i));
        let gv = <W as LoadStore<G>>::load(g.add(i));
        let mut sv = s.map(|s| <W as LoadStore<S>>::load(s.add(i)));
        kernel.apply(&mut pv, gv, &mut sv);
        if F::WRITES_PARAMS {
            LoadStore::<P>::store(pv, p.add(i));
        }
        if F::WRITES_STATE {
            for (v, s) in sv.into_iter().zip(s) {
                LoadStore::<S>::store(v, s.add(i));
            }
        }
        (pv, gv, sv)
    }
}
