//! cargo fuzz target `nlri`: see `l2pop_evpn::fuzzing::nlri`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| l2pop_evpn::fuzzing::nlri(data));
