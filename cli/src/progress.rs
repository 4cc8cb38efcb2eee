//! Progress of long work (`cachet audit`): a bar with rate and ETA on a terminal
//! (`indicatif`), a plain line every few seconds otherwise (logs, CI), nothing with
//! `--quiet`.

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
        if !self.quiet && (due || done == total) {
            eprintln!("{}: {done} of {total} {}, {detail}", self.what, self.unit);
            self.last_line = Some(Instant::now());
        }
    }

    /// The work ended: the bar is cleared.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
