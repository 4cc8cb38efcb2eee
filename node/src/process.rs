//! What the process uses, from `/proc/self` (`procfs`): CPU time, resident memory, open
//! files. On a system without `/proc` every figure reads 0.

use std::time::Duration;

/// The process's use of the machine.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessStats {
    /// User and system CPU time.
    pub cpu: Duration,
    /// Resident memory.
    pub resident_bytes: u64,
    /// Open file descriptors.
    pub open_fds: u64,
}

/// Reads the figures now.
pub fn read() -> ProcessStats {
    let Ok(me) = procfs::process::Process::myself() else {
        return ProcessStats::default();
    };
    let mut stats = ProcessStats::default();
    if let Ok(stat) = me.stat() {
        let ticks = procfs::ticks_per_second().max(1);
        let cpu_ticks = stat.utime + stat.stime;
        stats.cpu = Duration::from_micros(cpu_ticks * 1_000_000 / ticks);
        stats.resident_bytes = stat.rss * procfs::page_size();
    }
    if let Ok(count) = me.fd_count() {
        stats.open_fds = count as u64;
    }
    stats
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_process_reads_its_own_use() {
        let file = std::fs::File::open("/proc/self/stat").unwrap();
        // Burn CPU until the kernel has counted some (it counts in ticks of ~10 ms; a fixed
        // amount of work can finish inside one on a fast machine), at most 10 s of it.
        let started = std::time::Instant::now();
        let mut x = 0u64;
        let stats = loop {
            for i in 0..1_000_000u64 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
            }
            let stats = super::read();
            if stats.cpu > std::time::Duration::ZERO
                || started.elapsed() > std::time::Duration::from_secs(10)
            {
                break stats;
            }
        };
        assert!(stats.resident_bytes > 1 << 20, "{stats:?}");
        assert!(
            stats.open_fds >= 4,
            "stdin, stdout, stderr and the file: {stats:?}"
        );
        assert!(
            stats.cpu > std::time::Duration::ZERO,
            "10 s of work and no CPU time counted: {stats:?}"
        );
        drop(file);
    }
}
