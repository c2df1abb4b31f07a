//! Which delivery each target of a run holds, so a file name pattern that gives two recipients
//! one target fails the second delivery instead of replacing the first one's report.
//!
//! Targets are named as receipts name them (a path, an `ftp://` or `s3://` location), so what
//! an earlier attempt of a resumed run delivered, read back from the run log, takes its
//! targets before the resumed attempt delivers anything.

use std::collections::{HashMap, VecDeque};
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

/// How many runs' claims a channel keeps: runs of several tasks may share one channel at
/// once (a report server); the oldest run's claims go when one more starts.
const RUNS_KEPT: usize = 16;

/// The targets a channel has written in the runs it is delivering, and whose documents they
/// hold. Each run has its own: what earlier runs wrote is theirs to replace.
#[derive(Debug)]
pub struct Claims {
    /// Compares targets without case, as some file systems and servers do.
    fold_case: bool,
    /// Per run id, oldest first: target → owner.
    held: Mutex<VecDeque<(String, HashMap<String, Owner>)>>,
}

impl Claims {
    /// Claims comparing targets exactly, or without case when `fold_case`.
    pub fn new(fold_case: bool) -> Self {
        Claims {
            fold_case,
            held: Mutex::default(),
        }
    }

    /// Runs `work` on the targets run `run_id` holds.
    fn in_run<T>(&self, run_id: &str, work: impl FnOnce(&mut HashMap<String, Owner>) -> T) -> T {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        let at = match held.iter().position(|(run, _)| run == run_id) {
            Some(at) => at,
            None => {
                if held.len() == RUNS_KEPT {
                    held.pop_front();
                }
                held.push_back((run_id.to_string(), HashMap::new()));
                held.len() - 1
            }
        };
        work(&mut held[at].1)
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
        let keys: Vec<String> = targets.iter().map(|t| self.key(t)).collect();
        self.in_run(run_id, |taken| {
            self.take(backend, owner, targets, keys, taken)
        })
    }

    fn take(
        &self,
        backend: &'static str,
        owner: &Owner,
        targets: &[String],
        keys: Vec<String>,
        taken: &mut HashMap<String, Owner>,
    ) -> Result<()> {
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
        self.in_run(run_id, |taken| {
            for location in &receipt.locations {
                taken.insert(self.key(location), owner.clone());
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(recipient: &str) -> Owner {
        Owner {
            recipient: recipient.into(),
            report: "sales".into(),
        }
    }

    #[test]
    fn runs_sharing_a_channel_keep_their_own_claims() {
        let claims = Claims::new(false);
        let target = ["reports/Sales.pdf".to_string()];
        claims
            .claim_for("t", "run-a", &owner("east"), &target)
            .unwrap();
        // Another run may write the same target: runs replace each other's files.
        claims
            .claim_for("t", "run-b", &owner("west"), &target)
            .unwrap();
        // Run A still knows the target is east's, though run B claimed it since.
        let err = claims
            .claim_for("t", "run-a", &owner("west"), &target)
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
        assert!(err.to_string().contains("recipient 'east'"), "{err}");
        claims
            .claim_for("t", "run-a", &owner("east"), &target)
            .unwrap();
    }

    #[test]
    fn the_oldest_runs_claims_go_first() {
        let claims = Claims::new(true);
        let target = ["A.pdf".to_string()];
        for run in 0..=RUNS_KEPT {
            claims
                .claim_for("t", &format!("run-{run}"), &owner("east"), &target)
                .unwrap();
        }
        // run-0 was dropped when run-16 came (coming back, it drops run-1 in turn).
        claims
            .claim_for("t", "run-0", &owner("west"), &target)
            .unwrap();
        let err = claims
            .claim_for("t", "run-2", &owner("west"), &["a.PDF".to_string()])
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::AlreadyExists, "{err}");
    }
}
