//! Any text as a rule spec (`adam:lr=3e-4,amsgrad`): no panic; what parses prints back
//! (`Display`) to a spec that parses to the same rule; every refusal has a message.
#![no_main]

use core::fmt::Write;

use gradstep::rules::AnyRule;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = core::str::from_utf8(data) else {
        return;
    };
    match AnyRule::parse(text) {
        Ok(rule) => {
            let printed = rule.to_string();
            let again = AnyRule::parse(&printed).expect("a printed rule parses");
            // Bit equality (NaN cannot pass validation, so == is exact here).
            assert_eq!(again, rule, "{printed}");
        }
        Err(e) => {
            let mut message = String::new();
            write!(message, "{e}").unwrap();
            assert!(!message.is_empty());
        }
    }
});
