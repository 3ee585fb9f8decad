//! Text through semihosting without `core::fmt`: a line is built in a fixed buffer from
//! strings and integers written digit by digit, then sent in one host call.
//!
//! `core::fmt` (its `write`, padding and integer formatting, plus the argument tables at
//! every call site) took about 10 KB of flash, a sixth of the `lm3s811evb`'s 64 KiB; these
//! few loops do the same job for the lines this firmware prints. The panic handler
//! prints its location the same way, so no code path reaches `core::fmt` and LTO drops it.

use core::cell::Cell;

use cortex_m::interrupt::{self, Mutex};
use cortex_m_semihosting::hio::{self, HostStream};

/// The host's standard output, opened on the first line.
static STDOUT: Mutex<Cell<Option<HostStream>>> = Mutex::new(Cell::new(None));

/// Bytes of one line: the longest printed is the preview's 58.
const LINE_BYTES: usize = 96;

/// One line of output, built left to right; longer text is cut at [`LINE_BYTES`].
pub struct Line {
    buf: [u8; LINE_BYTES],
    len: usize,
}

impl Line {
    /// An empty line.
    pub const fn new() -> Line {
        Line {
            buf: [0; LINE_BYTES],
            len: 0,
        }
    }

    /// Appends raw bytes.
    #[inline(never)]
    pub fn bytes(&mut self, bytes: &[u8]) -> &mut Line {
        for &b in bytes {
            if let Some(slot) = self.buf.get_mut(self.len) {
                *slot = b;
                self.len += 1;
            }
        }
        self
    }

    /// Appends a string.
    #[inline(never)]
    pub fn s(&mut self, s: &str) -> &mut Line {
        self.bytes(s.as_bytes())
    }

    /// Appends `v` in decimal.
    #[inline(never)]
    pub fn u(&mut self, v: u32) -> &mut Line {
        let mut digits = [0u8; 10];
        let mut i = digits.len();
        let mut v = v;
        loop {
            i -= 1;
            digits[i] = b'0' + (v % 10) as u8;
            v /= 10;
            if v == 0 {
                break;
            }
        }
        self.bytes(&digits[i..])
    }

    /// Appends `v` as `0x` and eight lower-case hex digits (`{:#010x}`).
    #[inline(never)]
    pub fn hex(&mut self, v: u32) -> &mut Line {
        self.s("0x");
        for shift in (0..8).rev() {
            let nibble = ((v >> (4 * shift)) & 0xF) as u8;
            let c = if nibble < 10 {
                b'0' + nibble
            } else {
                b'a' + nibble - 10
            };
            self.bytes(&[c]);
        }
        self
    }

    /// Appends `hundredths / 100` with two decimals (`3.51`).
    #[inline(never)]
    pub fn centi(&mut self, hundredths: u32) -> &mut Line {
        self.u(hundredths / 100).s(".");
        let frac = hundredths % 100;
        self.u(frac / 10).u(frac % 10)
    }

    /// Appends `thousandths / 1000` with three decimals (`40.000`).
    #[inline(never)]
    pub fn milli(&mut self, thousandths: u32) -> &mut Line {
        self.u(thousandths / 1000).s(".");
        let frac = thousandths % 1000;
        self.u(frac / 100).u(frac / 10 % 10).u(frac % 10)
    }

    /// Sends the line and a newline to the host.
    #[inline(never)]
    pub fn print(&mut self) {
        self.bytes(b"\n");
        let line = &self.buf[..self.len];
        interrupt::free(|cs| {
            let cell = STDOUT.borrow(cs);
            let stream = cell.get().or_else(|| hio::hstdout().ok());
            if let Some(mut stream) = stream {
                // Nothing to do if the host refuses output.
                let _ = stream.write_all(line);
            }
            cell.set(stream);
        });
    }
}

/// Prints `s` as one line.
pub fn line(s: &str) {
    Line::new().s(s).print();
}
