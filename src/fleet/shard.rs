//! `rotate --shard I/N`: a deterministic, stable slice of the selected clusters, so that N
//! CI runners (a GitHub Actions matrix, GitLab `parallel:`) rotate a fleet together, each
//! cluster exactly once.
//!
//! A cluster's shard is the 64-bit FNV-1a hash of its name, mod N: it depends on the name
//! and N alone. Runners that checked out slightly different commits (a cluster added or
//! removed in between) still agree on every other cluster, and adding a cluster never
//! moves another, as cutting the sorted list into N ranges would. FNV-1a is fixed by its
//! definition, unlike std's hasher, which may change between Rust releases. The price:
//! shards are balanced only on average (12 clusters over 4 shards may split 5/3/2/2).

use std::fmt;

use super::ClusterName;

/// Shard `index` (1-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    index: u64,
    count: u64,
}

/// More runners than this is a typo, not a fleet.
const MAX_SHARDS: u64 = 1000;

impl Shard {
    /// `I/N` with 1 <= I <= N <= 1000 (clap's value parser: an error is a usage error).
    pub fn parse(text: &str) -> Result<Shard, String> {
        let usage = || {
            format!(
                "{text:?} is not a shard: expected I/N with 1 <= I <= N <= {MAX_SHARDS}, e.g. 2/4"
            )
        };
        let (index, count) = text.split_once('/').ok_or_else(usage)?;
        let number = |s: &str| {
            s.parse::<u64>()
                .ok()
                .filter(|_| s.bytes().all(|b| b.is_ascii_digit()))
        };
        let (Some(index), Some(count)) = (number(index), number(count)) else {
            return Err(usage());
        };
        if index == 0 || count == 0 || index > count || count > MAX_SHARDS {
            return Err(usage());
        }
        Ok(Shard { index, count })
    }

    /// Whether `name` belongs to this shard.
    pub fn contains(&self, name: &ClusterName) -> bool {
        fnv1a(name.as_str().as_bytes()) % self.count == self.index - 1
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    bytes
        .iter()
        .fold(OFFSET, |hash, b| (hash ^ u64::from(*b)).wrapping_mul(PRIME))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(n: usize) -> Vec<ClusterName> {
        (0..n)
            .map(|i| ClusterName::parse(&format!("c{i:03}")).unwrap())
            .collect()
    }

    fn shard_of(name: &ClusterName, count: u64) -> u64 {
        let hits: Vec<u64> = (1..=count)
            .filter(|i| Shard { index: *i, count }.contains(name))
            .collect();
        assert_eq!(hits.len(), 1, "{name} is in shards {hits:?} of {count}");
        hits[0]
    }

    #[test]
    fn every_cluster_is_in_exactly_one_shard() {
        for count in 1..=9 {
            for name in names(200) {
                shard_of(&name, count);
            }
        }
    }

    #[test]
    fn adding_clusters_moves_no_other_cluster() {
        let before: Vec<u64> = names(100).iter().map(|n| shard_of(n, 4)).collect();
        let after: Vec<u64> = names(150).iter().map(|n| shard_of(n, 4)).collect();
        assert_eq!(before[..], after[..100]);
    }

    #[test]
    fn the_assignment_is_pinned_and_roughly_balanced() {
        // Pinned: runners with different kube-dc builds must agree.
        assert_eq!(fnv1a(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a(b"alpha"), 0x8ac6_25bb_85ed_202b);
        assert_eq!(shard_of(&ClusterName::parse("alpha").unwrap(), 4), 4);
        assert_eq!(shard_of(&ClusterName::parse("c001").unwrap(), 4), 2);
        let mut sizes = [0usize; 4];
        for name in names(1000) {
            sizes[(shard_of(&name, 4) - 1) as usize] += 1;
        }
        assert!(sizes.iter().all(|s| (200..=300).contains(s)), "{sizes:?}");
    }

    #[test]
    fn only_i_of_n_with_1_le_i_le_n_is_a_shard() {
        for good in ["1/1", "1/4", "4/4", "1000/1000"] {
            assert_eq!(Shard::parse(good).unwrap().to_string(), good);
        }
        for bad in [
            "0/4", "5/4", "1/0", "0/0", "a/b", "1", "1/4/2", "-1/4", "+1/4", " 1/4", "1/1001", "",
            "/",
        ] {
            let e = Shard::parse(bad).unwrap_err();
            assert!(e.contains("expected I/N"), "{bad}: {e}");
        }
    }
}
