//! What the images share on a Cortex-M: semihosting output and exit, fault handlers, the
//! RAM-backed flash region.

use core::fmt;
use core::mem::MaybeUninit;

use cortex_m_rt::{ExceptionFrame, exception};
use cortex_m_semihosting::{debug, hio};

/// The core this image is built for.
#[cfg(target_abi = "eabihf")]
pub const CORE: &str = "Cortex-M4F (thumbv7em-none-eabihf)";
/// The core this image is built for.
#[cfg(not(target_abi = "eabihf"))]
pub const CORE: &str = "Cortex-M0 (thumbv6m-none-eabi)";

/// Semihosting standard output (QEMU prints it on its stdout).
pub struct Console(Option<hio::HostStream>);

impl Console {
    /// Opens the host's standard output.
    pub fn new() -> Self {
        Console(hio::hstdout().ok())
    }
}

impl Default for Console {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Write for Console {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        match &mut self.0 {
            Some(stream) => stream.write_all(s.as_bytes()).map_err(|_| fmt::Error),
            None => Err(fmt::Error),
        }
    }
}

/// Ends the emulation with success or failure (QEMU's exit status 0 or 1). On a real
/// board without a debugger attached, semihosting calls fault: flash a build that
/// reports another way (a LED, a UART) there.
pub fn exit(success: bool) -> ! {
    debug::exit(if success {
        debug::EXIT_SUCCESS
    } else {
        debug::EXIT_FAILURE
    });
    #[allow(clippy::empty_loop)]
    loop {}
}

#[exception]
unsafe fn HardFault(frame: &ExceptionFrame) -> ! {
    let mut out = Console::new();
    let _ = fmt::Write::write_fmt(&mut out, format_args!("HardFault: {frame:?}\n"));
    exit(false)
}

#[exception]
unsafe fn DefaultHandler(irq: i16) {
    let mut out = Console::new();
    let _ = fmt::Write::write_fmt(&mut out, format_args!("unexpected exception {irq}\n"));
    exit(false)
}

/// The one reference to a `static mut`, for code that runs once (`main`).
///
/// # Safety
/// `ptr` points to a static that nothing else references, now or later.
pub unsafe fn take<T>(ptr: *mut T) -> &'static mut T {
    // SAFETY: the caller's contract: the pointee is a static (lives forever) and this is
    // the only reference to it.
    unsafe { &mut *ptr }
}

/// A region of RAM that start-up code neither loads nor zeroes (cortex-m-rt's
/// `.uninit`), so that it keeps its contents across a reset, as flash would. On the first
/// power-up it holds whatever RAM holds (zeros in QEMU), which no slot accepts.
///
/// # Safety
/// Call once: the returned reference is the only one to the region.
pub unsafe fn uninit_region<const N: usize>(
    region: *mut MaybeUninit<[u8; N]>,
) -> &'static mut [u8] {
    // SAFETY: `region` points to a static of N bytes that nothing else references (the
    // caller's contract). Its bytes are RAM that holds some value at every point; like a
    // memory-mapped flash region, the store reads them without assuming what they hold.
    unsafe { core::slice::from_raw_parts_mut(region.cast::<u8>(), N) }
}
