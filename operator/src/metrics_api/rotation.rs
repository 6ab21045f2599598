//! When the metrics API's serving certificate is issued again (pure: `now` is an argument).
//!
//! The Secret holds a CA and a serving (leaf) certificate it signed. A certificate is renewed
//! once two thirds of its lifetime have passed, as cert-manager does by default, so there is
//! always a third of its life left to roll it out:
//!
//! ```text
//!  not_before ───────────── renew_at (2/3) ───── not_after
//!        Keep                    │  NewLeaf / NewAuthority
//! ```
//!
//! A new CA gets a new leaf with it; the caBundle then holds the new CA and the previous one
//! (until it expires), so a replica still serving the old leaf stays trusted while it reloads.

use chrono::{DateTime, Duration, Utc};

/// The validity period of one certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Validity {
    /// Not valid before.
    pub not_before: DateTime<Utc>,
    /// Not valid after.
    pub not_after: DateTime<Utc>,
}

/// What the Secret holds, as far as the decision needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Stored {
    /// There is no Secret, or it has no certificate.
    Missing,
    /// The Secret's contents do not parse, with why.
    Invalid(String),
    /// A CA and a leaf.
    Present {
        /// The CA's validity.
        ca: Validity,
        /// The leaf's validity.
        leaf: Validity,
        /// The DNS names the leaf is valid for.
        leaf_names: Vec<String>,
        /// Whether the CA's key signed the leaf.
        leaf_signed_by_ca: bool,
    },
}

/// How long certificates live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// A new CA's lifetime.
    pub ca_lifetime: Duration,
    /// A new leaf's lifetime (never past its CA's end).
    pub leaf_lifetime: Duration,
}

/// Why a certificate is issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// Nothing stored yet.
    Missing,
    /// The stored material does not parse.
    Invalid(String),
    /// The CA is past two thirds of its life, or expired.
    AuthorityExpiring,
    /// The CA is not valid yet (a clock jump, or a hand-made Secret).
    AuthorityNotYetValid,
    /// The leaf is past two thirds of its life, or expired.
    LeafExpiring,
    /// The leaf is not valid yet.
    LeafNotYetValid,
    /// The leaf does not cover every required name.
    NamesChanged,
    /// The leaf was not signed by the stored CA.
    LeafNotFromAuthority,
}

/// What to do with the stored certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Keep it; decide again at `recheck_at` at the latest.
    Keep {
        /// When the first renewal falls due.
        recheck_at: DateTime<Utc>,
    },
    /// Issue a new leaf from the stored CA.
    NewLeaf(Reason),
    /// Issue a new CA and a new leaf.
    NewAuthority(Reason),
}

// === impl Validity ===

impl Validity {
    /// The moment two thirds of the lifetime have passed.
    pub fn renew_at(&self) -> DateTime<Utc> {
        let life = self.not_after - self.not_before;
        self.not_before + life * 2 / 3
    }

    /// Whether `now` falls inside the validity period.
    pub fn contains(&self, now: DateTime<Utc>) -> bool {
        self.not_before <= now && now <= self.not_after
    }
}

// === impl Policy ===

impl Default for Policy {
    fn default() -> Self {
        Self {
            ca_lifetime: Duration::days(365),
            leaf_lifetime: Duration::days(90),
        }
    }
}

impl Policy {
    /// A new CA's validity from `now`. It starts an hour early so that a server whose clock
    /// is a little behind accepts it at once.
    pub fn authority_validity(&self, now: DateTime<Utc>) -> Validity {
        Validity {
            not_before: now - Duration::hours(1).min(self.ca_lifetime / 4),
            not_after: now + self.ca_lifetime,
        }
    }

    /// A new leaf's validity from `now`, ending no later than its CA.
    pub fn leaf_validity(&self, now: DateTime<Utc>, ca: &Validity) -> Validity {
        Validity {
            not_before: (now - Duration::hours(1).min(self.leaf_lifetime / 4)).max(ca.not_before),
            not_after: (now + self.leaf_lifetime).min(ca.not_after),
        }
    }
}

/// Decides whether the stored certificate serves `names` now, or what to issue.
pub fn decide(now: DateTime<Utc>, stored: &Stored, names: &[String]) -> Decision {
    let (ca, leaf, leaf_names, signed) = match stored {
        Stored::Missing => return Decision::NewAuthority(Reason::Missing),
        Stored::Invalid(why) => return Decision::NewAuthority(Reason::Invalid(why.clone())),
        Stored::Present {
            ca,
            leaf,
            leaf_names,
            leaf_signed_by_ca,
        } => (ca, leaf, leaf_names, *leaf_signed_by_ca),
    };
    if now < ca.not_before {
        return Decision::NewAuthority(Reason::AuthorityNotYetValid);
    }
    if now >= ca.renew_at() {
        return Decision::NewAuthority(Reason::AuthorityExpiring);
    }
    if !signed {
        return Decision::NewLeaf(Reason::LeafNotFromAuthority);
    }
    if !names.iter().all(|n| leaf_names.contains(n)) {
        return Decision::NewLeaf(Reason::NamesChanged);
    }
    if now < leaf.not_before {
        return Decision::NewLeaf(Reason::LeafNotYetValid);
    }
    if now >= leaf.renew_at() {
        return Decision::NewLeaf(Reason::LeafExpiring);
    }
    Decision::Keep {
        recheck_at: leaf.renew_at().min(ca.renew_at()),
    }
}

/// The CAs the caBundle trusts: the current one, then each previous one that is still
/// valid at `now` (a replica may still serve a leaf it signed).
pub fn bundle<'a>(
    now: DateTime<Utc>,
    current: &'a str,
    previous: impl IntoIterator<Item = (&'a str, Validity)>,
) -> Vec<&'a str> {
    let mut out = vec![current];
    for (pem, validity) in previous {
        if pem != current && now <= validity.not_after && !out.contains(&pem) {
            out.push(pem);
        }
    }
    out
}

#[cfg(test)]
mod tests;
