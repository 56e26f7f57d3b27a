//! SIGTERM handling without a libc crate: we declare the few C functions we need ourselves.
//!
//! This matters in containers: as PID 1 a process that installs no handler never sees SIGTERM
//! (the kernel drops signals with the default action for PID 1), so `docker stop` would always
//! wait for the stop timeout and SIGKILL.

use std::os::raw::c_int;

const SIGINT: c_int = 2;
const SIGTERM: c_int = 15;

extern "C" {
    fn signal(signum: c_int, handler: usize) -> usize;
    // Only async-signal-safe calls are made inside the handlers: write(2) and _exit(2).
    fn write(fd: c_int, buf: *const u8, count: usize) -> isize;
    fn _exit(status: c_int) -> !;
}

fn say(msg: &[u8]) {
    // SAFETY: writes a static buffer to stdout; write(2) is async-signal-safe.
    unsafe {
        write(1, msg.as_ptr(), msg.len());
    }
}

extern "C" fn on_term(_: c_int) {
    say(b"got SIGTERM\n");
    // SAFETY: _exit ends the process at once, which is what we want here.
    unsafe { _exit(0) }
}

extern "C" fn on_int(_: c_int) {
    say(b"got SIGINT\n");
    unsafe { _exit(130) }
}

extern "C" fn on_term_ignored(_: c_int) {
    say(b"got SIGTERM, ignoring it\n");
}

/// SIGTERM: print `got SIGTERM` and exit 0. SIGINT: exit 130 (for Ctrl-C in `docker run -it`).
pub fn exit_on_term() {
    // SAFETY: installs handlers that only call async-signal-safe functions.
    unsafe {
        signal(SIGTERM, on_term as extern "C" fn(c_int) as usize);
        signal(SIGINT, on_int as extern "C" fn(c_int) as usize);
    }
}

/// SIGTERM is reported and otherwise ignored, so only SIGKILL stops the process.
pub fn ignore_term() {
    // SAFETY: as above.
    unsafe {
        signal(SIGTERM, on_term_ignored as extern "C" fn(c_int) as usize);
    }
}
