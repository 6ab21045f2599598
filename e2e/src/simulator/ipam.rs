//! Address allocation inside 127.0.0.0/8: pod IPs and cluster IPs come from
//! two disjoint ranges so a glance at an address tells what it is.
//!
//! ```text
//!   127.0.0.1          the API server, the test process
//!   127.1.0.1 …        pod IPs     (default pod range, 127.1.0.0/16)
//!   127.96.0.1 …       cluster IPs (default service range, 127.96.0.0/16)
//!   127.128.0.0/9      blocks that processes claim with [`ClaimedBlock`]
//! ```
//!
//! Several clusters can run on one machine at once (tests in parallel, two copies of the
//! suite). Each takes its ranges from [`ClaimedBlock::claim`], which holds a lock that the
//! kernel releases when the process exits, so no two live processes share a block.

use std::collections::BTreeSet;
use std::net::{Ipv4Addr, UdpSocket};

use rand::Rng;

/// The region [`ClaimedBlock::claim`] takes blocks from: 127.128.0.0/9, which no default
/// range overlaps.
const CLAIM_REGION: (Ipv4Addr, u8) = (Ipv4Addr::new(127, 128, 0, 0), 9);

/// The UDP port of a block's lock socket, bound on the block's first address (`x.y.z.0`,
/// which [`IpPool`] never hands out) and outside Linux's ephemeral port range.
pub const CLAIM_PORT: u16 = 64_999;

/// Why a range like `127.1.0.0/16` was not accepted.
#[derive(Debug, thiserror::Error)]
#[error("{input:?} is not a range inside 127.0.0.0/8 written as 127.A.B.C/LEN with LEN 8 to 30")]
pub struct CidrError {
    /// What was given.
    pub input: String,
}

/// Parses `127.A.B.C/LEN` (LEN 8 to 30) into (base, prefix length), the shape of the
/// simulator's range options.
pub fn parse_cidr(input: &str) -> Result<(Ipv4Addr, u8), CidrError> {
    let err = || CidrError {
        input: input.to_string(),
    };
    let (ip, len) = input.split_once('/').ok_or_else(err)?;
    let ip: Ipv4Addr = ip.parse().map_err(|_| err())?;
    let len: u8 = len.parse().map_err(|_| err())?;
    if !ip.is_loopback() || !(8..=30).contains(&len) {
        return Err(err());
    }
    Ok((ip, len))
}

/// Why no block could be claimed.
#[derive(Debug, thiserror::Error)]
pub enum ClaimError {
    /// The prefix length is outside 10..=24.
    #[error("cannot claim a /{0} block: the prefix length must be between 10 and 24")]
    PrefixLength(u8),
    /// Every block of the region is held by a live process.
    #[error("every /{prefix_len} block of 127.128.0.0/9 is claimed by a live process")]
    Exhausted {
        /// The block size asked for.
        prefix_len: u8,
    },
}

/// A block of 127.128.0.0/9 that no other live process holds while this value lives.
///
/// The lock is a UDP socket bound to the block's first address on [`CLAIM_PORT`]: a second
/// bind fails with "address in use" until the holder drops the value or exits (even by
/// SIGKILL). The socket is close-on-exec, so child processes do not keep it.
#[derive(Debug)]
pub struct ClaimedBlock {
    base: Ipv4Addr,
    prefix_len: u8,
    _lock: UdpSocket,
}

// === impl ClaimedBlock ===

impl ClaimedBlock {
    /// Claims a free `/prefix_len` block (10 to 24), starting the search at a random block.
    pub fn claim(prefix_len: u8) -> Result<Self, ClaimError> {
        if !(10..=24).contains(&prefix_len) {
            return Err(ClaimError::PrefixLength(prefix_len));
        }
        let (region, region_len) = CLAIM_REGION;
        let blocks = 1u32 << (prefix_len - region_len);
        let block_size = 1u32 << (32 - prefix_len);
        let start = rand::rng().random_range(0..blocks);
        for i in 0..blocks {
            let index = (start + i) % blocks;
            let base = Ipv4Addr::from(u32::from(region) + index * block_size);
            if let Ok(lock) = UdpSocket::bind((base, CLAIM_PORT)) {
                return Ok(Self {
                    base,
                    prefix_len,
                    _lock: lock,
                });
            }
        }
        Err(ClaimError::Exhausted { prefix_len })
    }

    /// The block as (base, prefix length), the shape of the simulator's range options.
    pub fn cidr(&self) -> (Ipv4Addr, u8) {
        (self.base, self.prefix_len)
    }

    /// The block's `n`th address (`n` = 1 is the first usable one); `None` past its end.
    pub fn nth(&self, n: u32) -> Option<Ipv4Addr> {
        let size = 1u32 << (32 - self.prefix_len);
        (n < size).then(|| Ipv4Addr::from(u32::from(self.base) + n))
    }

    /// A pool handing out this block's addresses.
    pub fn pool(&self) -> IpPool {
        IpPool::new(self.base, self.prefix_len)
    }
}

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
    fn a_claimed_block_is_locked_until_dropped() {
        let a = ClaimedBlock::claim(24).unwrap();
        let b = ClaimedBlock::claim(24).unwrap();
        assert_ne!(a.cidr(), b.cidr());
        for block in [&a, &b] {
            let (base, len) = block.cidr();
            assert_eq!(len, 24);
            assert_eq!(base.octets()[0], 127);
            assert!(base.octets()[1] >= 128, "{base} outside 127.128.0.0/9");
            assert_eq!(base.octets()[3], 0);
        }
        let (base, _) = a.cidr();
        assert!(
            UdpSocket::bind((base, CLAIM_PORT)).is_err(),
            "the lock of {base} is held"
        );
        assert_eq!(a.nth(1), Some(Ipv4Addr::from(u32::from(base) + 1)));
        assert_eq!(a.nth(256), None);
        drop(a);
        assert!(
            UdpSocket::bind((base, CLAIM_PORT)).is_ok(),
            "dropping the claim frees {base}"
        );
    }

    #[test]
    fn parses_loopback_ranges_only() {
        assert_eq!(
            parse_cidr("127.42.0.0/16").unwrap(),
            (Ipv4Addr::new(127, 42, 0, 0), 16)
        );
        for bad in [
            "10.0.0.0/16",
            "127.1.0.0",
            "127.1.0.0/4",
            "127.1.0.0/31",
            "x/16",
        ] {
            let e = parse_cidr(bad).unwrap_err();
            assert!(e.to_string().contains(bad), "{e}");
        }
    }

    #[test]
    fn claims_only_sizes_that_fit_the_region() {
        assert!(matches!(
            ClaimedBlock::claim(8),
            Err(ClaimError::PrefixLength(8))
        ));
        assert!(matches!(
            ClaimedBlock::claim(25),
            Err(ClaimError::PrefixLength(25))
        ));
    }

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
