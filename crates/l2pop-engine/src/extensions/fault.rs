//! Fault-injection extensions: they fail (or panic) in every full-FDB build, to rehearse and test
//! the registry's isolation — the rest of the FDB still goes out, the fault is counted and
//! reported. `l2pop replay` registers them as the `failing` and `panicking` kinds.

use crate::extension::{ExtensionEntries, ExtensionError, FdbExtension, FullFdbRequest};

/// Returns `ExtensionError(message)` from every build.
#[derive(Debug, Clone)]
pub struct FailingFdb {
    message: String,
}

impl FailingFdb {
    pub fn new(message: impl Into<String>) -> Self {
        FailingFdb {
            message: message.into(),
        }
    }
}

impl FdbExtension for FailingFdb {
    fn extend_full_fdb(
        &self,
        _: &FullFdbRequest<'_>,
        _: &mut ExtensionEntries,
    ) -> Result<(), ExtensionError> {
        Err(ExtensionError::new(self.message.clone()))
    }
}

/// Panics with `message` in every build.
#[derive(Debug, Clone)]
pub struct PanickingFdb {
    message: String,
}

impl PanickingFdb {
    pub fn new(message: impl Into<String>) -> Self {
        PanickingFdb {
            message: message.into(),
        }
    }
}

impl FdbExtension for PanickingFdb {
    fn extend_full_fdb(
        &self,
        _: &FullFdbRequest<'_>,
        _: &mut ExtensionEntries,
    ) -> Result<(), ExtensionError> {
        panic!("{}", self.message)
    }
}
