//! Extensions that ship with the engine. `StaticFdb` is the example of the registry's use:
//! operator-configured remote VTEPs and devices. The BGPVPN extension lives in `l2pop-bgpvpn`.

mod static_fdb;

pub use static_fdb::{StaticAction, StaticFdb};
