//! A network of the world's posts: each validator sits in one of six regions, and a message
//! between two nodes takes the one-way delay between their regions, plus jitter, plus the
//! time the sender's uplink needs to send it after what it is already sending.
//!
//! The one-way delays are half of typical round-trip times between large cloud regions in
//! each area (public inter-region latency tables, e.g. Frankfurt, Johannesburg, Virginia,
//! São Paulo, Singapore, Sydney), rounded to 5 ms. They are a model, not a measurement of
//! any operator's link.

/// The regions, in table order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Region {
    /// Europe.
    Europe,
    /// Africa.
    Africa,
    /// North and Central America.
    AmericasNorth,
    /// South America.
    AmericasSouth,
    /// Asia.
    Asia,
    /// Oceania.
    Oceania,
}

impl Region {
    /// Every region, in table order.
    pub const ALL: [Region; 6] = [
        Region::Europe,
        Region::Africa,
        Region::AmericasNorth,
        Region::AmericasSouth,
        Region::Asia,
        Region::Oceania,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// One-way delay in ms between regions (symmetric).
pub const ONE_WAY_MS: [[u64; 6]; 6] = [
    //  EU   AF   AN   AS   ASIA OC
    [5, 80, 45, 100, 85, 140],    // Europe
    [80, 10, 115, 170, 150, 210], // Africa
    [45, 115, 10, 60, 110, 100],  // Americas North
    [100, 170, 60, 10, 165, 160], // Americas South
    [85, 150, 110, 165, 15, 50],  // Asia
    [140, 210, 100, 160, 50, 5],  // Oceania
];

/// How many of every 192 operators sit in each region (roughly the UPU's members: Europe
/// and Africa largest, then Asia, the Americas and Oceania).
const SHARE_OF_192: [usize; 6] = [52, 54, 22, 13, 37, 14];

/// The model's knobs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorldConfig {
    /// Extra random delay per message, as a per mille of the base delay (plus up to 1 ms).
    pub jitter_per_mille: u32,
    /// Messages lost, per mille (always, not only during the fault phase).
    pub loss_per_mille: u32,
    /// Each node's uplink, in kilobits per second.
    pub uplink_kbit_s: u64,
}

impl Default for WorldConfig {
    /// 10 % jitter, no loss, 100 Mbit/s uplinks.
    fn default() -> WorldConfig {
        WorldConfig {
            jitter_per_mille: 100,
            loss_per_mille: 0,
            uplink_kbit_s: 100_000,
        }
    }
}

/// The regions of `count` validators, in index order: regions take turns in proportion to
/// their share (each next validator goes to the region furthest behind its quota), so every
/// prefix of the validators is spread like the whole.
pub fn regions(count: usize) -> Vec<Region> {
    let total: usize = SHARE_OF_192.iter().sum();
    let mut given = [0usize; 6];
    (0..count)
        .map(|placed| {
            // Quota after `placed + 1` validators minus what the region has, scaled to
            // compare without fractions; ties go to the earlier region.
            let behind =
                |r: usize| ((placed + 1) * SHARE_OF_192[r]) as i64 - (given[r] * total) as i64;
            let region = (0..6)
                .max_by_key(|r| (behind(*r), std::cmp::Reverse(*r)))
                .unwrap_or(0);
            given[region] += 1;
            Region::ALL[region]
        })
        .collect()
}

/// The base one-way delay from one region to another.
pub fn base_delay_ms(from: Region, to: Region) -> u64 {
    ONE_WAY_MS[from.index()][to.index()]
}

/// Microseconds a node's uplink needs to send `bytes` (rounded up).
pub fn transmit_us(bytes: usize, uplink_kbit_s: u64) -> u64 {
    // kbit/s = bits per ms; bytes * 8 bits / (kbit/s) = ms; in µs: * 1000.
    (bytes as u64 * 8 * 1000).div_ceil(uplink_kbit_s.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_symmetric_and_local_links_are_fastest() {
        for a in Region::ALL {
            for b in Region::ALL {
                assert_eq!(base_delay_ms(a, b), base_delay_ms(b, a));
                assert!(base_delay_ms(a, a) <= base_delay_ms(a, b));
            }
        }
    }

    #[test]
    fn validators_spread_over_regions_by_share() {
        let mut counts = [0usize; 6];
        let all = regions(192);
        for region in &all {
            counts[region.index()] += 1;
        }
        assert_eq!(counts, SHARE_OF_192);
        // A small network already spans the regions, and is the start of a bigger one.
        let first: std::collections::BTreeSet<Region> = regions(16).into_iter().collect();
        assert_eq!(first.len(), 6);
        assert_eq!(regions(16), all[..16]);
    }

    #[test]
    fn a_block_takes_its_time_on_the_uplink() {
        // 1 MB at 100 Mbit/s: 80 ms.
        assert_eq!(transmit_us(1_000_000, 100_000), 80_000);
        assert_eq!(transmit_us(1, 100_000), 1);
    }
}
