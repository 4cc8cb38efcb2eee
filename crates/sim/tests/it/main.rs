//! The simulator's campaigns: many seeds with every fault, a Byzantine validator, and exact
//! replay. `CACHET_SIM_SEEDS` sets how many seeds each campaign runs (default 200; the long
//! campaign is `cargo run --release -p cachet-sim -- --seeds 10000`).

use cachet_sim::{Report, SimConfig, WorldConfig, run};

fn seeds() -> u64 {
    std::env::var("CACHET_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200)
}

fn campaign(name: &str, first: u64, config: impl Fn(u64) -> SimConfig) {
    let count = seeds();
    let reports = all_pass(first, count, config);
    let heights: u64 = reports.iter().map(|r| r.height).sum();
    let torn: u64 = reports.iter().map(|r| r.crashes.1).sum();
    // Not a vacuous pass: the runs finalized blocks, and crashes cut block writes short.
    assert!(
        heights >= count,
        "{name}: only {heights} blocks in {count} runs"
    );
    assert!(
        torn > 0,
        "{name}: no crash ever hit a block write in {count} runs"
    );
}

#[test]
fn every_fault_four_validators() {
    campaign("faults", 0, SimConfig::faulty);
}

#[test]
fn byzantine_equivocator_among_four() {
    campaign("byzantine", 1_000_000, |seed| SimConfig {
        byzantine: true,
        ..SimConfig::faulty(seed)
    });
}

/// A node whose store fails its reads while it checks a valid proposal stops (and is
/// restarted) instead of voting against the block: the block is still decided, and every
/// checker stays green. Were a failed read taken as a verdict, the node would prevote nil on
/// the block (and blacklist it for the height), which the simulator reports as a violation.
#[test]
fn a_store_that_fails_reads_while_checking_a_proposal_stops_its_node_and_the_block_is_decided() {
    let count = (seeds() / 4).max(20);
    let reports = all_pass(3_000_000, count, |seed| SimConfig {
        read_failures: true,
        ..SimConfig::calm(seed)
    });
    let failed: u64 = reports.iter().map(|r| r.failed_checks.0).sum();
    let decided: u64 = reports.iter().map(|r| r.failed_checks.1).sum();
    assert!(
        failed > 0,
        "no proposal check failed to read in {count} runs"
    );
    assert!(
        decided * 2 >= failed,
        "of {failed} blocks whose check failed to read, only {decided} were decided"
    );
}

/// The world model: validators in six regions with the inter-region delays, jitter and
/// uplinks, under every fault, at 4 validators; finality and load are reported.
#[test]
fn four_validators_in_the_world_with_every_fault() {
    let reports = all_pass(4_000_000, (seeds() / 4).max(20), |seed| SimConfig {
        world: Some(WorldConfig::default()),
        ..SimConfig::faulty(seed)
    });
    let (p50, p99) = reports[0].finality_ms;
    assert!(p50 > 0 && p99 >= p50, "finality {p50}/{p99} ms");
    assert!(
        reports
            .iter()
            .all(|r| r.load.messages > 0 && r.load.signature_checks > 0)
    );
}

/// Sixteen validators across the regions, with crashes, partitions and 1 % loss
/// everywhere on top of the fault model's.
#[test]
fn sixteen_validators_in_the_world_with_faults() {
    let count = std::env::var("CACHET_SIM_SEEDS_16")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(3);
    all_pass(16_000_000, count, |seed| SimConfig {
        validators: 16,
        world: Some(WorldConfig {
            loss_per_mille: 10,
            ..WorldConfig::default()
        }),
        ..SimConfig::faulty(seed)
    });
}

/// Every other fault kind at 16 validators in the world: an equivocator, a store failing its
/// reads while a proposal is checked, and an operator voted in (one seed each, with the
/// crashes, partitions, loss and failed writes of every run).
#[test]
fn sixteen_validators_in_the_world_with_every_fault_kind() {
    let world = Some(WorldConfig::default());
    let base = |seed| SimConfig {
        validators: 16,
        world,
        ..SimConfig::faulty(seed)
    };
    let byzantine = all_pass(16_200_000, 1, |seed| SimConfig {
        byzantine: true,
        ..base(seed)
    });
    assert!(byzantine[0].equivocations > 0, "nobody saw the equivocator");
    all_pass(16_300_000, 1, |seed| SimConfig {
        read_failures: true,
        ..base(seed)
    });
    let joined = all_pass(16_400_000, 1, |seed| SimConfig {
        join: true,
        ..base(seed)
    });
    assert!(joined[0].joined_at.is_some());
}

/// Without faults, a world of 16 validators finalizes a ready transaction within a few
/// one-way delays of the farthest regions (the benchmark figures are in the README; this
/// only bounds it loosely, in simulated time, so it cannot flake).
#[test]
fn sixteen_validators_in_a_calm_world_finalize_within_seconds_of_simulated_time() {
    let report = all_pass(16_100_000, 1, |seed| SimConfig {
        validators: 16,
        world: Some(WorldConfig::default()),
        ..SimConfig::calm(seed)
    })
    .remove(0);
    let (p50, p99) = report.finality_ms;
    assert!(
        p50 <= 3_000 && p99 <= 10_000,
        "finality p50 {p50} ms, p99 {p99} ms"
    );
    // Each validator sends at least a proposal-or-vote set to its 15 peers per height.
    assert!(report.load.messages >= 2 * 15, "{:?}", report.load);
}

/// Runs `count` seeds from `first`; fails with every violation; returns the reports.
fn all_pass(first: u64, count: u64, config: impl Fn(u64) -> SimConfig) -> Vec<Report> {
    let mut reports = Vec::new();
    let mut failures = Vec::new();
    for seed in first..first + count {
        match run(config(seed)) {
            Ok(report) => reports.push(report),
            Err(violation) => failures.push(violation.to_string()),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {count} seeds failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    reports
}

#[test]
fn an_operator_joins_by_vote_under_faults() {
    // Half the seeds: a join run is longer (it goes on past the activation height).
    // A run passes only once the new operator's node has signed at a height of the new set.
    all_pass(3_000_000, (seeds() / 2).max(10), |seed| SimConfig {
        join: true,
        byzantine: seed % 4 == 0,
        ..SimConfig::faulty(seed)
    });
}

#[test]
fn a_validator_that_loses_its_ledger_comes_back_by_state_sync_under_faults() {
    let reports = all_pass(5_000_000, (seeds() / 10).max(20), |seed| SimConfig {
        state_sync: true,
        ..SimConfig::faulty(seed)
    });
    for report in &reports {
        let height = report.state_synced_at.expect("it joined by a snapshot");
        assert!(height >= 4, "a snapshot of a grown chain, not the genesis");
    }
}

#[test]
fn a_validator_that_loses_its_signer_state_rejoins_quietly_under_faults() {
    all_pass(5_000_000, (seeds() / 10).max(20), |seed| SimConfig {
        lose_signer: true,
        ..SimConfig::faulty(seed)
    });
}

#[test]
fn seven_validators_with_faults() {
    all_pass(2_000_000, (seeds() / 4).max(10), |seed| SimConfig {
        validators: 7,
        byzantine: seed % 2 == 0,
        ..SimConfig::faulty(seed)
    });
}

#[test]
fn more_validators_than_the_first_fixtures_with_faults() {
    // Past the eight named test countries: operator ids and keys come from the testkit's
    // generated country codes.
    all_pass(3_000_000, 4, |seed| SimConfig {
        validators: 10 + (seed as usize % 2) * 3,
        byzantine: seed % 2 == 1,
        ..SimConfig::faulty(seed)
    });
}

#[test]
fn a_byzantine_validator_is_seen_equivocating() {
    // Not only safe: honest nodes notice the double votes.
    let mut seen = 0;
    for seed in 0..20 {
        let report = run(SimConfig {
            byzantine: true,
            ..SimConfig::faulty(seed)
        })
        .unwrap_or_else(|v| panic!("{v}"));
        seen += report.equivocations;
    }
    assert!(
        seen > 0,
        "no equivocation was observed in 20 Byzantine runs"
    );
}

#[test]
fn same_seed_same_trace() {
    for seed in [1, 42, 9_001] {
        let first = run(SimConfig::faulty(seed)).unwrap_or_else(|v| panic!("{v}"));
        let second = run(SimConfig::faulty(seed)).unwrap_or_else(|v| panic!("{v}"));
        assert_eq!(first, second, "seed {seed} did not replay exactly");
    }
    let a = run(SimConfig::faulty(1)).unwrap();
    let b = run(SimConfig::faulty(2)).unwrap();
    assert_ne!(a.trace_hash, b.trace_hash, "different seeds gave one trace");
}

#[test]
fn no_faults_finalizes_everything_quickly() {
    let config = SimConfig {
        crashes: false,
        partitions: false,
        loss_per_mille: 0,
        dup_per_mille: 0,
        max_delay_ms: 20,
        ..SimConfig::faulty(7)
    };
    let fault_ms = config.fault_ms;
    let report = run(config).unwrap_or_else(|v| panic!("{v}"));
    // 4 operators x (issue + 8 mints) valid transactions.
    assert_eq!(report.txs_final, 36);
    // Transactions arrive during the first `fault_ms`, at random nodes and out of nonce
    // order: the node's mempool refuses one whose predecessor it lacks (a nonce gap), so it
    // waits for its client's resubmission (every 2-4 s) or a regossip (after 3 s), once per
    // step out of order. All are final within a few such cycles of the last one.
    assert!(
        report.elapsed_ms < fault_ms + 15_000,
        "a fault-free run took {} ms",
        report.elapsed_ms
    );
    assert_eq!(report.equivocations, 0);
}

#[test]
fn a_failing_run_is_reported_with_its_replay_and_replays_exactly() {
    // No time at all after healing: the liveness checker must fail, the same way twice.
    let config = SimConfig {
        byzantine: true,
        heal_bound_ms: 0,
        ..SimConfig::faulty(5)
    };
    let first = run(config.clone()).expect_err("liveness cannot hold with no time to heal");
    let second = run(config).expect_err("liveness cannot hold with no time to heal");
    assert_eq!(first, second, "a failing seed did not replay exactly");
    assert!(first.what.starts_with("liveness"), "{first}");
    assert!(
        first.to_string().contains("-- --seed 5 --byzantine"),
        "the replay command is missing its flags: {first}"
    );
}
