//! Address allocation inside 127.0.0.0/8: pod IPs and cluster IPs come from
//! two disjoint ranges so a glance at an address tells what it is.
//!
//! ```text
//!   127.0.0.1          the API server, the test process
//!   127.1.0.1 …        pod IPs     (default pod range, 127.1.0.0/16)
//!   127.96.0.1 …       cluster IPs (default service range, 127.96.0.0/16)
//! ```

use std::collections::BTreeSet;
use std::net::Ipv4Addr;

/// A contiguous block of IPv4 addresses handed out one at a time.
///
/// Addresses ending in `.0` or `.255` are skipped, so every address looks
/// like a host address.
#[derive(Clone, Debug)]
pub struct IpPool {
    first: u32,
    last: u32,
    next: u32,
    used: BTreeSet<u32>,
}

// === impl IpPool ===

impl IpPool {
    /// A pool over `base/prefix_len`, for example `127.1.0.0/16`.
    pub fn new(base: Ipv4Addr, prefix_len: u8) -> Self {
        let prefix_len = u32::from(prefix_len.min(32));
        let mask = if prefix_len == 0 {
            0
        } else {
            u32::MAX << (32 - prefix_len)
        };
        let first = u32::from(base) & mask;
        let last = first | !mask;
        Self {
            first,
            last,
            next: first,
            used: BTreeSet::new(),
        }
    }

    /// The default pod range, 127.1.0.0/16.
    pub fn default_pods() -> Self {
        Self::new(Ipv4Addr::new(127, 1, 0, 0), 16)
    }

    /// The default service range, 127.96.0.0/16.
    pub fn default_services() -> Self {
        Self::new(Ipv4Addr::new(127, 96, 0, 0), 16)
    }

    /// Whether `ip` lies inside this pool's range.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        (self.first..=self.last).contains(&u32::from(ip))
    }

    fn usable(ip: u32) -> bool {
        let last_octet = ip & 0xff;
        last_octet != 0 && last_octet != 255 && ip != u32::from(Ipv4Addr::LOCALHOST)
    }

    /// Hands out the next free address, or `None` when the pool is full.
    pub fn allocate(&mut self) -> Option<Ipv4Addr> {
        let size = u64::from(self.last - self.first) + 1;
        for _ in 0..size {
            let candidate = self.next;
            self.next = if self.next >= self.last {
                self.first
            } else {
                self.next + 1
            };
            if Self::usable(candidate) && !self.used.contains(&candidate) {
                self.used.insert(candidate);
                return Some(Ipv4Addr::from(candidate));
            }
        }
        None
    }

    /// Marks `ip` as taken (an address found on an existing object); false
    /// when it is outside the range or already taken.
    pub fn reserve(&mut self, ip: Ipv4Addr) -> bool {
        let ip = u32::from(ip);
        (self.first..=self.last).contains(&ip) && Self::usable(ip) && self.used.insert(ip)
    }

    /// Returns `ip` to the pool.
    pub fn release(&mut self, ip: Ipv4Addr) {
        self.used.remove(&u32::from(ip));
    }

    /// How many addresses are handed out.
    pub fn in_use(&self) -> usize {
        self.used.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocates_distinct_host_addresses_in_range() {
        let mut pool = IpPool::default_pods();
        let a = pool.allocate().unwrap();
        let b = pool.allocate().unwrap();
        assert_eq!(a, Ipv4Addr::new(127, 1, 0, 1));
        assert_eq!(b, Ipv4Addr::new(127, 1, 0, 2));
        assert!(pool.contains(a) && pool.contains(b));
        assert!(!pool.contains(Ipv4Addr::new(127, 96, 0, 1)));
    }

    #[test]
    fn never_hands_out_localhost_or_network_or_broadcast() {
        let mut pool = IpPool::new(Ipv4Addr::new(127, 0, 0, 0), 24);
        let all: Vec<_> = std::iter::from_fn(|| pool.allocate()).collect();
        assert_eq!(all.len(), 253);
        assert!(!all.contains(&Ipv4Addr::LOCALHOST));
        assert!(!all.contains(&Ipv4Addr::new(127, 0, 0, 0)));
        assert!(!all.contains(&Ipv4Addr::new(127, 0, 0, 255)));
    }

    #[test]
    fn reserved_addresses_are_skipped_and_released_ones_reused() {
        let mut pool = IpPool::new(Ipv4Addr::new(127, 5, 5, 0), 30);
        assert!(pool.reserve(Ipv4Addr::new(127, 5, 5, 1)));
        assert!(!pool.reserve(Ipv4Addr::new(127, 5, 5, 1)));
        assert!(!pool.reserve(Ipv4Addr::new(127, 9, 9, 9)));
        assert_eq!(pool.allocate(), Some(Ipv4Addr::new(127, 5, 5, 2)));
        assert_eq!(pool.allocate(), Some(Ipv4Addr::new(127, 5, 5, 3)));
        assert_eq!(pool.allocate(), None);
        pool.release(Ipv4Addr::new(127, 5, 5, 1));
        assert_eq!(pool.allocate(), Some(Ipv4Addr::new(127, 5, 5, 1)));
        assert_eq!(pool.in_use(), 3);
    }
}
