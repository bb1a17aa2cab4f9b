//! Any byte string through the checkpoint decoder: `peek`, `inspect` and `decode_any`
//! into destinations sized from the header never panic; whatever decodes re-encodes to
//! the same bytes; a refusal leaves the destinations untouched.
#![no_main]

use gradstep::checkpoint::{self, Element};
use libfuzzer_sys::fuzz_target;

/// Destinations larger than this are not allocated (the header may claim anything).
const MAX_N: u64 = 1 << 16;

fn round_trip<T: Element>(bytes: &[u8]) {
    let Ok(header) = checkpoint::peek(bytes) else {
        assert!(checkpoint::inspect(bytes).is_err());
        return;
    };
    if header.n > MAX_N || checkpoint::ElementType::of::<T>() != header.element {
        return;
    }
    let n = header.n as usize;
    let sentinel = T::from_f64(-7.25);
    let untouched = |x: &T| x.to_f64() == -7.25;
    let mut state = vec![vec![sentinel; n]; header.slots];
    let mut params = vec![sentinel; n];
    let mut slices: Vec<&mut [T]> = state.iter_mut().map(|s| &mut s[..]).collect();
    let p = header.has_params.then_some(&mut params[..]);
    match checkpoint::decode_any::<T>(bytes, &mut slices, p) {
        Ok((rule, scalars)) => {
            // The same verdict without destinations (values compared through the
            // re-encoding below, which is exact where `==` is not: NaN payloads).
            checkpoint::inspect(bytes).expect("decoded, so it inspects");
            let len = header.len as usize;
            let mut out = vec![0u8; len];
            let shared: Vec<&[T]> = state.iter().map(|s| &s[..]).collect();
            let p = header.has_params.then_some(&params[..]);
            let written = checkpoint::encode_any(&rule, &scalars, &shared, p, &mut out)
                .expect("what decodes encodes");
            assert_eq!(written, len);
            assert_eq!(&out[..], &bytes[..len], "re-encoding gives the same bytes");
        }
        Err(_) => {
            assert!(state.iter().flatten().all(untouched));
            assert!(params.iter().all(untouched));
        }
    }
}

/// The CRC-32 checkpoints carry (zlib's).
static CRC32: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISO_HDLC);

// The first byte selects the mode. Odd: the checksum over the stated length is made
// right after mutation, so that the fuzzer explores the structure behind it (a mutated
// checkpoint otherwise stops at the CRC). Even: the bytes as they are.
fuzz_target!(|data: &[u8]| {
    let Some((&mode, bytes)) = data.split_first() else {
        return;
    };
    let mut bytes = bytes.to_vec();
    if mode & 1 == 1 && bytes.len() >= 16 {
        let stated = u64::from_le_bytes(bytes[8..16].try_into().unwrap());
        if let Ok(len) = usize::try_from(stated)
            && (8..=bytes.len()).contains(&len)
        {
            let crc = CRC32.checksum(&bytes[..len - 4]);
            bytes[len - 4..len].copy_from_slice(&crc.to_le_bytes());
        }
    }
    round_trip::<f32>(&bytes);
    round_trip::<f64>(&bytes);
});
