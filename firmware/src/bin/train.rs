//! The training image: trains the digits classifier with Adam and with SGD-momentum,
//! checkpointing to a RAM-backed flash region after every epoch, resets itself once
//! after epoch 3 to show the resume, and exits (semihosting) with success only if both
//! sessions pass. See `gradstep_firmware::train`.

#![no_std]
#![no_main]

use core::fmt::Write;
use core::mem::MaybeUninit;

use cortex_m_rt::entry;
use gradstep_firmware::board::{self, Console};
use gradstep_firmware::train::{self, Buffers, CHECKPOINT_LEN, Outcome};
use gradstep_flash_store::{HEADER_LEN, RamFlash, Store};
use panic_semihosting as _;

/// Erase unit of the emulated flash: the nRF51's 1 KiB page.
const PAGE: usize = 1024;
/// Each slot holds the largest checkpoint, in whole pages.
const SLOT: usize = (HEADER_LEN + CHECKPOINT_LEN).div_ceil(PAGE) * PAGE;

#[unsafe(link_section = ".uninit.gradstep_store")]
static mut STORE: MaybeUninit<[u8; 2 * SLOT]> = MaybeUninit::uninit();

static mut BUFFERS: Buffers = Buffers::new();

#[entry]
fn main() -> ! {
    let mut out = Console::new();
    // SAFETY: `main` runs once and takes the only references to these two statics.
    let (region, buffers) = unsafe {
        (
            board::uninit_region(&raw mut STORE),
            board::take(&raw mut BUFFERS),
        )
    };
    let flash = RamFlash::<PAGE, 4>::new(region);
    let Ok(mut store) = Store::new(flash) else {
        let _ = writeln!(out, "flash region too small");
        board::exit(false)
    };
    let _ = writeln!(
        out,
        "gradstep on {}: checkpoints in 2 slots of {SLOT} bytes of RAM-backed flash",
        board::CORE
    );
    match train::run(&mut out, &mut store, buffers, Some(3)) {
        Ok(Outcome::Passed) => board::exit(true),
        Ok(Outcome::Reset) => cortex_m::peripheral::SCB::sys_reset(),
        Ok(Outcome::Failed) | Err(_) => board::exit(false),
    }
}
