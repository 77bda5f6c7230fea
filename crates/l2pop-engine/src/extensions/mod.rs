//! Extensions that ship with the engine. `StaticFdb` is the example of the registry's use:
//! operator-configured remote VTEPs and devices. `FailingFdb` and `PanickingFdb` inject faults. The BGPVPN extension lives in `l2pop-bgpvpn`.

mod fault;
mod static_fdb;

pub use fault::{FailingFdb, PanickingFdb};

pub use static_fdb::{StaticAction, StaticFdb};
