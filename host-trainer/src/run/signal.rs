//! How a user stops a run early: the first Ctrl-C or SIGTERM (what `docker stop`, systemd
//! and batch schedulers send; the `ctrlc` crate's `termination` feature) asks training to
//! stop after the current step and write a checkpoint at that step (`--resume` continues
//! from it), the second exits at once.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::Context;

/// The flag that Ctrl-C or SIGTERM sets, for [`train`](crate::train::train) to watch. A
/// second signal while it is set exits with status 130.
///
/// A process has one handler: the first call installs it, later calls (a second run in the
/// same process, as in the tests) return the same flag.
pub fn stop_on_ctrl_c() -> anyhow::Result<Arc<AtomicBool>> {
    static INSTALLED: Mutex<Option<Arc<AtomicBool>>> = Mutex::new(None);
    let mut installed = INSTALLED.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(stop) = installed.as_ref() {
        return Ok(stop.clone());
    }
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
    })
    .context("installing the Ctrl-C and SIGTERM handler")?;
    *installed = Some(stop.clone());
    Ok(stop)
}
