/* Where flush-to-zero mode (torch.set_flush_denormal(True)) detects a tiny result, on
 * the machine it runs on: x86-64 (MXCSR.FTZ) or AArch64 (FPCR.FZ). Not a test: a probe
 * for the README (Speed: subnormal state), run by hand:
 *
 *   cc -O0 benches/c/ftz_tininess.c -o /tmp/ftz && /tmp/ftz
 *   aarch64-linux-gnu-gcc -O0 -static benches/c/ftz_tininess.c -o /tmp/ftz_arm &&
 *       qemu-aarch64 /tmp/ftz_arm
 *
 * The product of two normal floats, (1 + 2^-23) * 2^-1 and (1 - 2^-23) * 2^-125, is
 * (1 - 2^-46) * 2^-126: below the least normal, 2^-126, before rounding, and 2^-126 once
 * rounded to 24 bits. Tininess detected after rounding keeps it (2^-126), before
 * rounding flushes it (0). The inputs are normal, so flushing subnormal inputs (x86's
 * DAZ, part of AArch64's FZ) does not enter. */
#include <stdint.h>
#include <stdio.h>

int main(void) {
    volatile float x = 0x1.000002p-1f, y = 0x1.fffffcp-126f;
#if defined(__x86_64__)
    uint32_t mxcsr;
    __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
    mxcsr |= 1u << 15 | 1u << 6; /* FTZ, DAZ: what torch.set_flush_denormal(True) sets */
    __asm__ volatile("ldmxcsr %0" ::"m"(mxcsr));
    const char *mode = "x86-64 MXCSR.FTZ|DAZ";
#elif defined(__aarch64__)
    uint64_t fpcr;
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    fpcr |= 1u << 24; /* FZ */
    __asm__ volatile("msr fpcr, %0" ::"r"(fpcr));
    const char *mode = "AArch64 FPCR.FZ";
#else
#error "x86-64 or AArch64"
#endif
    volatile float r = x * y;
    printf("%s: %a * %a = %a: tininess detected %s rounding\n", mode, (double)x, (double)y,
           (double)r, r == 0 ? "before" : "after");
    return 0;
}
