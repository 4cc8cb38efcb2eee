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
}

fn main() {
    let args = Args::parse();
    let config = |seed| {
        let mut config = cachet_sim::SimConfig::faulty(seed);
        config.validators = usize::from(args.validators);
        config.byzantine = args.byzantine;
        config.join = args.join;
        config.read_failures = args.read_failures;
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
    let started = std::time::Instant::now();
    for seed in args.start..args.start + args.seeds {
        if let Err(violation) = cachet_sim::run(config(seed)) {
            eprintln!("FAILED {violation}");
            failed += 1;
        }
        let done = seed - args.start + 1;
        if done % 100 == 0 {
            eprintln!("{done}/{} seeds, {failed} failed", args.seeds);
        }
    }
    println!(
        "{} seeds from {}: {} failed ({:.1}s)",
        args.seeds,
        args.start,
        failed,
        started.elapsed().as_secs_f64()
    );
    if failed > 0 {
        std::process::exit(1);
    }
}
