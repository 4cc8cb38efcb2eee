//! `cachet-sim`: runs the deterministic simulator over one seed or many.

use clap::Parser;

/// Run Cachet's consensus and state machine over a simulated faulty network.
///
/// Each seed is one run: four validators (by default), message loss, duplication and
/// reordering, partitions, crashes and restarts for the fault phase, then healing; the run
/// fails if two nodes finalize different blocks at a height, an invalid transaction becomes
/// final, states differ, or finality does not resume after healing. A failing seed is
/// printed and replays exactly with `--seed`.
#[derive(Parser)]
#[command(name = "cachet-sim")]
struct Args {
    /// Run this one seed and print its report.
    #[arg(long, conflicts_with_all = ["seeds", "start"])]
    seed: Option<u64>,
    /// Number of seeds to run.
    #[arg(long, default_value_t = 100)]
    seeds: u64,
    /// First seed.
    #[arg(long, default_value_t = 0)]
    start: u64,
    /// Number of validators (up to the chain's limit of operators).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..=cachet_types::genesis::MAX_OPERATORS as i64))]
    validators: u16,
    /// Make the last validator equivocate.
    #[arg(long)]
    byzantine: bool,
    /// Add a node outside the genesis set that the operators vote in; it must validate from
    /// the agreed height.
    #[arg(long)]
    join: bool,
    /// Sometimes make a node's store fail its reads while it checks a proposal (the node
    /// must stop, never vote against the block).
    #[arg(long)]
    read_failures: bool,
    /// Validator 1 loses its ledger mid-run and comes back by state sync (snapshots every
    /// 4 blocks), then backfills; it must end with everyone's state.
    #[arg(long)]
    state_sync: bool,
    /// Validator 2 loses its signer state mid-run and is back at once on its ledger; it must
    /// rejoin quietly, never signing again at a height it had signed.
    #[arg(long)]
    lose_signer: bool,
    /// Place the validators in six world regions: one-way delays from the inter-region
    /// table, 10 % jitter, 100 Mbit/s uplinks (see the sim crate's `world` module).
    #[arg(long)]
    world: bool,
    /// With --world: messages lost everywhere, per mille, for the whole run.
    #[arg(long, default_value_t = 0, requires = "world", value_parser = clap::value_parser!(u32).range(0..=500))]
    world_loss: u32,
    /// No crashes, partitions, loss or duplication: only the network model's delays.
    #[arg(long)]
    no_faults: bool,
}

fn main() {
    let args = Args::parse();
    let config = |seed| {
        let mut config = if args.no_faults {
            cachet_sim::SimConfig::calm(seed)
        } else {
            cachet_sim::SimConfig::faulty(seed)
        };
        config.world = args.world.then(|| cachet_sim::WorldConfig {
            loss_per_mille: args.world_loss,
            ..cachet_sim::WorldConfig::default()
        });
        config.validators = usize::from(args.validators);
        config.byzantine = args.byzantine;
        config.join = args.join;
        config.read_failures = args.read_failures;
        config.state_sync = args.state_sync;
        config.lose_signer = args.lose_signer;
        config
    };
    if let Some(seed) = args.seed {
        match cachet_sim::run(config(seed)) {
            Ok(report) => println!("{report:#?}"),
            Err(violation) => {
                eprintln!("FAILED {violation}");
                std::process::exit(1);
            }
        }
        return;
    }
    let mut failed = 0u64;
    let mut reports = Vec::new();
    let started = std::time::Instant::now();
    // Big networks take seconds a seed: report progress more often.
    let every = if args.validators >= 32 { 1 } else { 100 };
    for seed in args.start..args.start + args.seeds {
        match cachet_sim::run(config(seed)) {
            Ok(report) => reports.push(report),
            Err(violation) => {
                eprintln!("FAILED {violation}");
                failed += 1;
            }
        }
        let done = seed - args.start + 1;
        if done % every == 0 {
            eprintln!(
                "{done}/{} seeds, {failed} failed ({:.0}s)",
                args.seeds,
                started.elapsed().as_secs_f64()
            );
        }
    }
    println!(
        "{} seeds from {}, {} validators: {} failed ({:.1}s)",
        args.seeds,
        args.start,
        args.validators,
        failed,
        started.elapsed().as_secs_f64()
    );
    if !reports.is_empty() {
        let mut p50: Vec<u64> = reports.iter().map(|r| r.finality_ms.0).collect();
        p50.sort_unstable();
        let p99 = reports.iter().map(|r| r.finality_ms.1).max().unwrap_or(0);
        let count = reports.len() as u64;
        let mean = |f: fn(&cachet_sim::Report) -> u64| reports.iter().map(f).sum::<u64>() / count;
        println!(
            "finality: median of the seeds' p50 {} ms, worst p99 {} ms (goal with --world \
             --no-faults at 192 validators: p50 <= 1500 ms, p99 <= 3000 ms)",
            p50[p50.len() / 2],
            p99
        );
        println!(
            "per validator per height (mean over seeds): {} messages, {} bytes, {} signature \
             checks; max round {}",
            mean(|r| r.load.messages),
            mean(|r| r.load.bytes),
            mean(|r| r.load.signature_checks),
            reports.iter().map(|r| r.max_round).max().unwrap_or(0)
        );
    }
    if failed > 0 {
        std::process::exit(1);
    }
}
