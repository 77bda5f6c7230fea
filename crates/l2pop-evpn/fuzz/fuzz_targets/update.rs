//! cargo fuzz target `update`: see `l2pop_evpn::fuzzing::update`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| l2pop_evpn::fuzzing::update(data));
