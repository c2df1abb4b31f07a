//! Which delivery each target of a run holds, so a file name pattern that gives two recipients
//! one target fails the second delivery instead of replacing the first one's report.

use std::collections::HashMap;
use std::sync::Mutex;

use mad_core::{Delivery, Error, ErrorKind, Result};

/// Whose document a target holds: a recipient's report (with its burst value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub recipient: String,
    pub report: String,
}

impl Owner {
    pub fn of(delivery: &Delivery) -> Owner {
        Owner {
            recipient: delivery.recipient.id.clone(),
            report: match delivery.placeholders.get("burst") {
                Some(value) => format!("{} ({value})", delivery.report.name),
                None => delivery.report.name.clone(),
            },
        }
    }
}

/// The targets a channel has written in the run it is delivering, and whose documents they
/// hold. A new run starts afresh: what earlier runs wrote is theirs to replace.
#[derive(Debug, Default)]
pub struct Claims(Mutex<(String, HashMap<String, Owner>)>);

impl Claims {
    /// Records that `targets` (as the caller compares them: folders without case, object
    /// keys exactly) hold `delivery`'s documents, refusing with `AlreadyExists` when one
    /// already holds another recipient's or report's document of the same run. The same
    /// delivery again (a retry) may claim its own targets.
    pub fn claim(
        &self,
        backend: &'static str,
        delivery: &Delivery,
        targets: &[String],
    ) -> Result<()> {
        let owner = Owner::of(delivery);
        let mut claims = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let (run, held) = &mut *claims;
        if *run != delivery.run_id {
            *run = delivery.run_id.clone();
            held.clear();
        }
        if let Some((target, other)) = targets
            .iter()
            .find_map(|t| held.get(t).filter(|o| **o != owner).map(|o| (t, o)))
        {
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                format!(
                    "{target} already holds the report '{}' delivered to recipient '{}' in this \
                     run; this document would replace it, so it is not written: make the file \
                     name or the subfolder differ per recipient, for example with \
                     {{recipient.id}}",
                    other.report, other.recipient
                ),
            )
            .with_backend(backend));
        }
        for target in targets {
            held.insert(target.clone(), owner.clone());
        }
        Ok(())
    }
}
