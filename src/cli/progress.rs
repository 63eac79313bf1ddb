//! A progress bar on standard error for long commands: redrawn in place (at most ten times a
//! second) on a terminal, one plain line per tenth otherwise (logs, CI).

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use crate::registry::demo::Progress;

const REDRAW: Duration = Duration::from_millis(100);
const WIDTH: usize = 30;

pub struct Bar {
    tty: bool,
    name: String,
    total: u64,
    done: u64,
    started: Instant,
    last_draw: Option<Instant>,
    /// Next tenth to print as a plain line (1..=10).
    next_tenth: u64,
    open: bool,
}

impl Bar {
    pub fn stderr() -> Bar {
        Bar {
            tty: std::io::stderr().is_terminal(),
            name: String::new(),
            total: 0,
            done: 0,
            started: Instant::now(),
            last_draw: None,
            next_tenth: 1,
            open: false,
        }
    }

    fn rate(&self) -> String {
        let secs = self.started.elapsed().as_secs_f64();
        if secs < 0.001 || self.total <= 1 {
            return "-".into();
        }
        let r = self.done as f64 / secs;
        if r >= 10_000.0 {
            format!("{:.0}k/s", r / 1000.0)
        } else if r >= 1000.0 {
            format!("{:.1}k/s", r / 1000.0)
        } else {
            format!("{r:.0}/s")
        }
    }

    fn percent(&self) -> u64 {
        (self.done.min(self.total) * 100)
            .checked_div(self.total)
            .unwrap_or(100)
    }

    fn draw(&mut self) {
        let filled = if self.total == 0 {
            WIDTH
        } else {
            (self.done.min(self.total) as usize * WIDTH) / self.total as usize
        };
        let line = format!(
            "\r{:<11} [{}{}] {:>9}/{:<9} {:>3}% {:>9}",
            self.name,
            "#".repeat(filled),
            "-".repeat(WIDTH - filled),
            self.done,
            self.total,
            self.percent(),
            self.rate()
        );
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(line.as_bytes());
        let _ = err.flush();
        self.last_draw = Some(Instant::now());
    }

    fn plain_lines(&mut self) {
        if self.total == 0 {
            if self.next_tenth <= 10 {
                eprintln!("{}: 100% (0/0)", self.name);
                self.next_tenth = 11;
            }
            return;
        }
        // One line for the latest tenth reached (a batch may jump over several).
        let reached = (self.done.min(self.total) * 10) / self.total;
        if reached >= self.next_tenth {
            eprintln!(
                "{}: {:>3}% ({}/{}, {})",
                self.name,
                reached * 10,
                self.done,
                self.total,
                self.rate()
            );
            self.next_tenth = reached + 1;
        }
    }

    fn close(&mut self) {
        if !self.open {
            return;
        }
        if self.tty {
            self.draw();
            eprintln!();
        } else {
            self.plain_lines();
        }
        self.open = false;
    }
}

impl Progress for Bar {
    fn phase(&mut self, name: &str, total: u64) {
        self.close();
        self.name = name.to_string();
        self.total = total;
        self.done = 0;
        self.started = Instant::now();
        self.last_draw = None;
        self.next_tenth = 1;
        self.open = true;
        if self.tty {
            self.draw();
        }
    }

    fn advance(&mut self, done: u64) {
        self.done = done;
        if self.tty {
            if self.last_draw.is_none_or(|t| t.elapsed() >= REDRAW) {
                self.draw();
            }
        } else {
            self.plain_lines();
        }
    }

    fn finish(&mut self) {
        self.close();
    }
}
