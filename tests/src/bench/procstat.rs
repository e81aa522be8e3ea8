//! What a proxy process costs, read from /proc: CPU time (utime + stime of the process and its
//! descendants), resident memory, and CPU pinning (so that the proxy under test has its own
//! cores and the load generator and fake upstream the others).

use std::fs;

/// The pid whose command line contains `needle` (the first found), besides this process.
pub fn find_pid(needle: &str) -> Option<i32> {
    let me = std::process::id() as i32;
    pids().into_iter().find(|&pid| {
        pid != me
            && fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| {
                    String::from_utf8_lossy(&c)
                        .replace('\0', " ")
                        .contains(needle)
                })
                .unwrap_or(false)
    })
}

fn pids() -> Vec<i32> {
    fs::read_dir("/proc")
        .map(|d| {
            d.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Fields of /proc/<pid>/stat after the command name (field 3 onward).
fn stat_fields(pid: i32) -> Option<Vec<String>> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = text.rsplit_once(')')?.1;
    Some(after.split_whitespace().map(str::to_string).collect())
}

/// `pid` and all its living descendants.
pub fn tree(pid: i32) -> Vec<i32> {
    let parents: Vec<(i32, i32)> = pids()
        .into_iter()
        .filter_map(|p| {
            let ppid = stat_fields(p)?.get(1)?.parse().ok()?;
            Some((p, ppid))
        })
        .collect();
    let mut out = vec![pid];
    let mut i = 0;
    while i < out.len() {
        let parent = out[i];
        out.extend(
            parents
                .iter()
                .filter(|(_, pp)| *pp == parent)
                .map(|(p, _)| *p),
        );
        i += 1;
    }
    out
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// CPU seconds (user, system) used so far by `pid` and its descendants.
pub fn cpu_times(pid: i32) -> (f64, f64) {
    let (user, system) = tree(pid)
        .into_iter()
        .filter_map(|p| {
            let f = stat_fields(p)?;
            // utime and stime are fields 14 and 15 of /proc/<pid>/stat.
            Some((
                f.get(11)?.parse::<u64>().ok()?,
                f.get(12)?.parse::<u64>().ok()?,
            ))
        })
        .fold((0, 0), |(u, s), (pu, ps)| (u + pu, s + ps));
    let hz = clock_ticks();
    (user as f64 / hz, system as f64 / hz)
}

/// CPU seconds (user and system) used so far by `pid` and its descendants.
pub fn cpu_seconds(pid: i32) -> f64 {
    let (user, system) = cpu_times(pid);
    user + system
}

/// User (and nice) seconds and stolen seconds spent so far on the given CPUs, by everyone
/// (/proc/stat): compared with the proxy's own user time, it tells how much other processes
/// (or the hypervisor) took from the proxy's cores during a run.
pub fn cpus_user_and_steal(cpus: &[usize]) -> (f64, f64) {
    let stat = fs::read_to_string("/proc/stat").unwrap_or_default();
    let (mut user, mut steal) = (0u64, 0u64);
    for line in stat.lines() {
        let mut fields = line.split_whitespace();
        let Some(name) = fields.next() else { continue };
        let Some(n) = name
            .strip_prefix("cpu")
            .and_then(|n| n.parse::<usize>().ok())
        else {
            continue;
        };
        if !cpus.contains(&n) {
            continue;
        }
        let v: Vec<u64> = fields.filter_map(|f| f.parse().ok()).collect();
        // user nice system idle iowait irq softirq steal
        user += v.first().copied().unwrap_or(0) + v.get(1).copied().unwrap_or(0);
        steal += v.get(7).copied().unwrap_or(0);
    }
    let hz = clock_ticks();
    (user as f64 / hz, steal as f64 / hz)
}

/// The 1-minute load average.
pub fn load_average() -> f64 {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

/// Resident memory of `pid` and its descendants, in KiB.
pub fn rss_kib(pid: i32) -> u64 {
    tree(pid)
        .into_iter()
        .filter_map(|p| {
            let status = fs::read_to_string(format!("/proc/{p}/status")).ok()?;
            status
                .lines()
                .find(|l| l.starts_with("VmRSS:"))?
                .split_whitespace()
                .nth(1)?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

/// Number of CPUs this process may run on.
pub fn online_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

/// Pins the calling thread to `cpus` (threads and processes it creates afterwards inherit it).
pub fn pin_current_thread(cpus: &[usize]) -> bool {
    if cpus.is_empty() {
        return false;
    }
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET and sched_setaffinity only read
    // and write that set.
    unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        for &c in cpus {
            libc::CPU_SET(c, &mut set);
        }
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) == 0
    }
}

/// Sets the calling thread's nice value (inherited by the threads and processes it creates
/// afterwards); false when not permitted.
pub fn set_nice(nice: i32) -> bool {
    // SAFETY: setpriority has no memory-safety preconditions; `0` names the calling thread.
    unsafe { libc::setpriority(libc::PRIO_PROCESS, 0, nice) == 0 }
}

/// Runs `f` with the calling thread pinned to `cpus`, then pins it back to `after`: whatever `f`
/// starts (a proxy) is born on `cpus`.
pub fn with_cpus<T>(cpus: &[usize], after: &[usize], f: impl FnOnce() -> T) -> T {
    pin_current_thread(cpus);
    let out = f();
    pin_current_thread(after);
    out
}

/// One line naming the machine: CPU model, cores, memory, kernel.
pub struct Machine {
    pub cpu_model: String,
    pub nproc: usize,
    pub mem_gib: f64,
    pub kernel: String,
}

pub fn machine() -> Machine {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_string())
        .unwrap_or_else(|| "unknown".into());
    let mem_kib: f64 = fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0.0);
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    Machine {
        cpu_model,
        nproc: online_cpus(),
        mem_gib: mem_kib / 1024.0 / 1024.0,
        kernel,
    }
}
