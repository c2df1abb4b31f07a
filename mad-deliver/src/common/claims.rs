//! Which delivery each target of a run holds, so a file name pattern that gives two recipients
//! one target fails the second delivery instead of replacing the first one's report.
//!
//! Targets are named as receipts name them (a path, an `ftp://` or `s3://` location), so what
//! an earlier attempt of a resumed run delivered, read back from the run log, takes its
//! targets before the resumed attempt delivers anything.

use std::collections::HashMap;
use std::sync::Mutex;

use mad_core::{Delivery, Error, ErrorKind, Receipt, Result};

/// Whose document a target holds: a recipient's report, named as its delivery key names it
/// (with the burst value after U+001F in a burst).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Owner {
    pub recipient: String,
    pub report: String,
}

impl Owner {
    pub fn of(delivery: &Delivery) -> Owner {
        Owner {
            recipient: delivery.recipient.id.clone(),
            report: delivery.report_key(),
        }
    }

    /// The report as a person reads it: `sales (Texas)` in a burst.
    fn report_name(&self) -> String {
        match self.report.split_once('\u{1f}') {
            Some((report, value)) => format!("{report} ({value})"),
            None => self.report.clone(),
        }
    }
}

/// The targets a channel has written in the run it is delivering, and whose documents they
/// hold. A new run starts afresh: what earlier runs wrote is theirs to replace.
#[derive(Debug)]
pub struct Claims {
    /// Compares targets without case, as some file systems and servers do.
    fold_case: bool,
    held: Mutex<(String, HashMap<String, Owner>)>,
}

impl Claims {
    /// Claims comparing targets exactly, or without case when `fold_case`.
    pub fn new(fold_case: bool) -> Self {
        Claims {
            fold_case,
            held: Mutex::default(),
        }
    }

    fn key(&self, target: &str) -> String {
        if self.fold_case {
            target.to_lowercase()
        } else {
            target.to_string()
        }
    }

    /// Records that `targets` hold `delivery`'s documents, refusing with `AlreadyExists` when
    /// one already holds another recipient's or report's document of the same run. The same
    /// delivery again (a retry) may claim its own targets.
    pub fn claim(
        &self,
        backend: &'static str,
        delivery: &Delivery,
        targets: &[String],
    ) -> Result<()> {
        self.claim_for(backend, &delivery.run_id, &Owner::of(delivery), targets)
    }

    /// [`Claims::claim`] for `owner`'s delivery in run `run_id`.
    pub fn claim_for(
        &self,
        backend: &'static str,
        run_id: &str,
        owner: &Owner,
        targets: &[String],
    ) -> Result<()> {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let (run, taken) = &mut *held;
        if run != run_id {
            *run = run_id.to_string();
            taken.clear();
        }
        let keys: Vec<String> = targets.iter().map(|t| self.key(t)).collect();
        if let Some((target, other)) = keys
            .iter()
            .zip(targets)
            .find_map(|(k, t)| taken.get(k).filter(|o| *o != owner).map(|o| (t, o)))
        {
            let same = if self.fold_case {
                " (or a name differing from it only in case, which some file systems and servers \
                 take for the same)"
            } else {
                ""
            };
            return Err(Error::new(
                ErrorKind::AlreadyExists,
                format!(
                    "{target}{same} holds the report '{}' delivered to recipient '{}' in this \
                     run; this document would replace it, so it is not written: make the file \
                     name or the subfolder differ per recipient, for example with \
                     {{recipient.id}}",
                    other.report_name(),
                    other.recipient
                ),
            )
            .with_backend(backend));
        }
        for key in keys {
            taken.insert(key, owner.clone());
        }
        Ok(())
    }

    /// Takes the targets of a delivery an earlier attempt of run `run_id` made: `receipt`'s
    /// locations, for `recipient`'s `report`.
    pub fn delivered_earlier(
        &self,
        run_id: &str,
        recipient: &str,
        report: &str,
        receipt: &Receipt,
    ) {
        let owner = Owner {
            recipient: recipient.to_string(),
            report: report.to_string(),
        };
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let (run, taken) = &mut *held;
        if run != run_id {
            *run = run_id.to_string();
            taken.clear();
        }
        for location in &receipt.locations {
            taken.insert(self.key(location), owner.clone());
        }
    }
}
