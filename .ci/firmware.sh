#!/usr/bin/env bash
# Builds the firmware (firmware/m4, one crate with a feature per board) for each QEMU board,
# runs it, checks that every image checksum it prints equals the host's
# (firmware-sim --checksums), prints its sizes and instruction counts and enforces each
# board's flash / RAM budget. Boards: mps2-an386 (Cortex-M4F), microbit (Cortex-M0,
# 256 KiB flash / 16 KiB RAM), lm3s811evb (Cortex-M3, 64 KiB flash / 8 KiB RAM: the
# chip's own limits, with the reference kernels only). Needs only rustup, cargo, python3
# and apt-get on a clean machine.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

QEMU_TIMEOUT=300

say() { printf -- '--- %s\n' "$*"; }
die() { printf 'firmware.sh: FAIL: %s\n' "$*" >&2; exit 1; }

if ! command -v qemu-system-arm >/dev/null; then
  say "installing qemu-system-arm"
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-system-arm >/dev/null
fi
rustup target add thumbv7em-none-eabihf thumbv6m-none-eabi thumbv7m-none-eabi >/dev/null 2>&1 || true
rustup component add llvm-tools >/dev/null 2>&1 || true

# llvm-size: rustup's llvm-tools first, then the system's.
HOST=$(rustc -vV | sed -n 's/^host: //p')
LLVM_SIZE="$(rustc --print sysroot)/lib/rustlib/$HOST/bin/llvm-size"
if [ ! -x "$LLVM_SIZE" ]; then
  LLVM_SIZE=$(command -v llvm-size || ls /usr/lib/llvm-*/bin/llvm-size 2>/dev/null | tail -n1 || true)
fi
[ -n "$LLVM_SIZE" ] && [ -x "$LLVM_SIZE" ] || die "no llvm-size found (rustup component add llvm-tools)"

LOG=$(mktemp)
HOST_SUMS=$(mktemp)
trap 'rm -f "$LOG" "$HOST_SUMS"' EXIT

# run_board FEATURE TARGET MACHINE CPU PROFILE FLASH_BUDGET RAM_BUDGET
run_board() {
local feature=$1 target=$2 machine=$3 cpu=$4 profile=$5 FLASH_BUDGET=$6 RAM_BUDGET=$7
say "build firmware/m4 for $machine (profile $profile, feature $feature, $target)"
cd "$ROOT/firmware/m4"
# .cargo/config.toml here holds the QEMU runners: cargo must run from this dir.
cargo build --profile "$profile" --no-default-features --features "$feature" --target "$target"
cargo clippy --profile "$profile" --no-default-features --features "$feature" --target "$target" -- -D warnings
FW_TARGET_DIR=$(cargo metadata --format-version 1 --no-deps |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
ELF="$FW_TARGET_DIR/$target/$profile/digits-m4"
[ -f "$ELF" ] || die "no firmware image at $ELF"
cd "$ROOT"

say "run on qemu-system-arm ($machine, $cpu, -icount shift=0)"
status=0
timeout "$QEMU_TIMEOUT" qemu-system-arm -machine "$machine" -cpu "$cpu" -nographic \
  -semihosting-config enable=on,target=native -icount shift=0 -kernel "$ELF" \
  </dev/null >"$LOG" 2>&1 || status=$?
cat "$LOG"
[ "$status" -eq 0 ] || die "firmware exited with status $status (124 = timeout after ${QEMU_TIMEOUT}s)"
grep -q '^done$' "$LOG" || die "firmware did not finish"

say "checksums: firmware vs host (firmware-sim --checksums)"
SEED=$(sed -n 's/^digit 0 seed \([0-9]*\) .*/\1/p' "$LOG")
[ -n "$SEED" ] || die "firmware printed no checksum for digit 0"
cargo run --quiet --release -p firmware-sim -- --checksums --seed "$SEED" 0123456789 >"$HOST_SUMS"
[ "$(wc -l <"$HOST_SUMS")" -eq 10 ] || die "host printed $(wc -l <"$HOST_SUMS") checksum lines, expected 10"
if ! diff <(grep '^digit ' "$LOG") "$HOST_SUMS"; then
  die "firmware and host images differ (< firmware, > host)"
fi
echo "all 10 images bit-identical to the host's (FNV-1a of the 784 bytes, base seed $SEED)"

say "size ($LLVM_SIZE -A)"
"$LLVM_SIZE" -A "$ELF"
STACK_PEAK=$(sed -n 's/^stack peak: \([0-9]*\) bytes$/\1/p' "$LOG")
[ -n "$STACK_PEAK" ] || die "firmware printed no stack peak"
STACK_ESTIMATE=$(sed -n 's/^pub const STACK_ESTIMATE_BYTES: usize = \([0-9_]*\);$/\1/p' \
  firmware-sim/src/report.rs | tr -d _)
"$LLVM_SIZE" -A "$ELF" | python3 -c '
import sys
flash_budget, ram_budget, stack_peak, stack_estimate = (int(a) for a in sys.argv[1:5])
sections = {}
for line in sys.stdin:
    parts = line.split()
    if len(parts) == 3 and parts[0].startswith(".") and parts[1].isdigit():
        sections[parts[0]] = int(parts[1])
get = lambda name: sections.get(name, 0)
# Flash holds the code, constants (the model) and the initial values of .data.
flash = get(".vector_table") + get(".text") + get(".rodata") + get(".data")
static_ram = get(".data") + get(".bss") + get(".uninit")
ram = static_ram + stack_peak
rows = [
    ("flash", ".vector_table + .text + .rodata + .data", flash, flash_budget),
    ("RAM", ".data + .bss + .uninit (static)", static_ram, None),
    ("", "+ stack peak (measured by painting)", stack_peak, None),
    ("RAM", "total", ram, ram_budget),
]
print("%-6s %-42s %8s %8s" % ("memory", "what", "bytes", "budget"))
for kind, what, size, budget in rows:
    shown = f"{budget:>8}" if budget else ""
    print(f"{kind:6} {what:42} {size:>8} {shown}")
failed = []
if flash > flash_budget:
    failed.append(f"flash {flash} B > {flash_budget} B")
if ram > ram_budget:
    failed.append(f"RAM {ram} B > {ram_budget} B")
if stack_peak > stack_estimate:
    failed.append(f"stack peak {stack_peak} B > firmware-sim STACK_ESTIMATE_BYTES {stack_estimate} B: raise it")
if failed:
    sys.exit("firmware.sh: FAIL: " + "; ".join(failed))
print(f"flash {flash * 100 // flash_budget}% and RAM {ram * 100 // ram_budget}% of budget; "
      f"stack peak within firmware-sim estimate ({stack_estimate} B)")
' "$FLASH_BUDGET" "$RAM_BUDGET" "$STACK_PEAK" "${STACK_ESTIMATE:?firmware-sim/src/report.rs has no STACK_ESTIMATE_BYTES}"

say "instructions ($machine; SysTick ticks calibrated against a loop of known length)"
grep -E '^(calibration|instructions per)' "$LOG"
say "firmware OK on $machine"
}

# The issue's floors for a small board: flash <= 96 KiB, RAM <= 12 KiB (the chip has 256 / 16).
run_board mps2-an386 thumbv7em-none-eabihf mps2-an386 cortex-m4 release $((128 * 1024)) $((32 * 1024))
run_board microbit thumbv6m-none-eabi microbit cortex-m0 small $((96 * 1024)) $((12 * 1024))
# The LM3S811's whole chip: 64 KiB flash, 8 KiB RAM (static + measured stack peak).
run_board lm3s811evb thumbv7m-none-eabi lm3s811evb cortex-m3 tiny $((64 * 1024)) $((8 * 1024))
