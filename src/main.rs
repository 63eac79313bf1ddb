// Outside tests, nothing unwraps: a value from a client or the database that is not there is
// an error to answer, not a panic (clippy fails the build on a new one).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

fn main() -> std::process::ExitCode {
    tune_malloc();
    xuncha::cli::main()
}

/// glibc's malloc, left to itself, holds on to memory a server like this one frees: every
/// thread that allocates gets an arena of its own (up to 8 per core), and after a large
/// buffer is freed it raises its mmap threshold (up to 32 MiB), so later large buffers come
/// from those arenas and stay there: argon2's 19 MiB blocks held 4 GB after 650 logins, and
/// a 1,000-phone morning sync left 16 arenas of about 10 MB each (both measured with the
/// device simulator). Four arenas and a fixed threshold of 4 MiB (fixing it turns off the
/// raising) keep pull pages in the arenas, where they are reused, and give anything larger
/// back to the system when freed.
/// `MALLOC_ARENA_MAX` and `MALLOC_MMAP_THRESHOLD_` in the environment still win.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_malloc() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only changes malloc's parameters; called before any thread starts.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 4);
        }
    }
    if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
        // SAFETY: as above.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 4 << 20);
        }
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_malloc() {}
