//! cargo fuzz target `fsm`: see `l2pop_evpn::fuzzing::fsm`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    l2pop_evpn::fuzzing::fsm(data);
});
