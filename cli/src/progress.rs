//! Progress of long work (`cachet audit`, exports, waiting for a bulk submission): a bar
//! with rate and ETA on a terminal (`indicatif`), a plain line every few seconds otherwise
//! (logs, CI), nothing with `--quiet`.

use std::io::IsTerminal;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// Time between two plain progress lines.
pub const PLAIN_EVERY: Duration = Duration::from_secs(5);

/// The progress of one piece of work.
pub struct Progress {
    what: &'static str,
    unit: &'static str,
    bar: Option<ProgressBar>,
    quiet: bool,
    last_line: Option<Instant>,
    /// Plain lines only once the work has taken a while (and then its end too).
    only_if_slow: bool,
    /// Whether a plain line has been printed.
    printed: bool,
}

impl Progress {
    /// Progress of `what`, counted in `unit`s, on standard error.
    pub fn new(what: &'static str, unit: &'static str, quiet: bool) -> Progress {
        let bar = (!quiet && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::new(0);
            let template = format!(
                "{{prefix}} [{{bar:30}}] {{pos}}/{{len}} {unit} {{msg}} ({{per_sec}}, ETA {{eta}})"
            );
            if let Ok(style) = ProgressStyle::with_template(&template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.set_prefix(what);
            bar
        });
        Progress {
            what,
            unit,
            bar,
            quiet,
            last_line: None,
            only_if_slow: false,
            printed: false,
        }
    }

    /// Like [`Progress::new`], for work that is often short: off a terminal, the first plain
    /// line comes after [`PLAIN_EVERY`], and the closing one only if another came before
    /// (a quick export or wait leaves standard error alone).
    pub fn when_slow(what: &'static str, unit: &'static str, quiet: bool) -> Progress {
        Progress {
            last_line: Some(Instant::now()),
            only_if_slow: true,
            ..Progress::new(what, unit, quiet)
        }
    }

    /// `done` of `total` units, with a detail (e.g. a transaction rate).
    pub fn update(&mut self, done: u64, total: u64, detail: &str) {
        if let Some(bar) = &self.bar {
            bar.set_length(total);
            bar.set_position(done);
            bar.set_message(detail.to_string());
            return;
        }
        let due = self.last_line.is_none_or(|at| at.elapsed() >= PLAIN_EVERY);
        let closing = done == total && (!self.only_if_slow || self.printed);
        if !self.quiet && (due || closing) {
            eprintln!("{}: {done} of {total} {}, {detail}", self.what, self.unit);
            self.last_line = Some(Instant::now());
            self.printed = true;
        }
    }

    /// The work ended: the bar is cleared.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Under `cargo test` standard error is not a terminal: plain lines.
    #[test]
    fn short_work_prints_nothing_when_slow_only_and_its_end_otherwise() {
        let mut quick = Progress::when_slow("export", "stamps", false);
        quick.update(1, 3, "written");
        quick.update(3, 3, "written");
        assert!(!quick.printed, "a quick export leaves standard error alone");

        let mut slow = Progress::when_slow("export", "stamps", false);
        slow.last_line = Some(Instant::now() - PLAIN_EVERY);
        slow.update(1, 3, "written");
        assert!(slow.printed, "a line once the work has taken a while");

        let mut audit = Progress::new("audit", "blocks", false);
        audit.update(3, 3, "done");
        assert!(audit.printed, "plain progress always says where it ended");

        let mut quiet = Progress::new("audit", "blocks", true);
        quiet.update(3, 3, "done");
        assert!(!quiet.printed);
    }
}
