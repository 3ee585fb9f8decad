#!/usr/bin/env bash
# Builds the C firmware (arm-none-eabi-gcc + libdgen.a for thumbv7em-none-eabihf), runs it
# on QEMU mps2-an386 and diffs its checksum lines with `firmware-sim --checksums`.
# Installs gcc-arm-none-eabi and qemu-system-arm with apt-get when they are missing.
set -euo pipefail
cd "$(dirname "$0")/../.."

if ! command -v arm-none-eabi-gcc >/dev/null || ! command -v qemu-system-arm >/dev/null; then
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends gcc-arm-none-eabi qemu-system-arm >/dev/null
fi
rustup target add thumbv7em-none-eabihf >/dev/null 2>&1 || true

cargo build -q -p dgen-capi --release --target thumbv7em-none-eabihf
ELF=target/dgen-c-m4.elf
arm-none-eabi-gcc -std=c11 -Wall -Wextra -Werror -O2 -mcpu=cortex-m4 -mthumb \
  -mfloat-abi=hard -mfpu=fpv4-sp-d16 -ffreestanding -nostdlib -ffunction-sections \
  -Icapi/include -T capi/firmware/link.ld -Wl,--gc-sections \
  capi/firmware/firmware.c target/thumbv7em-none-eabihf/release/libdgen.a -lgcc -o "$ELF"
arm-none-eabi-size "$ELF"

# Semihosting output arrives on QEMU's stderr; the exit status is the firmware's verdict.
status=0
timeout 300 qemu-system-arm -machine mps2-an386 -cpu cortex-m4 -nographic \
  -semihosting-config enable=on,target=native -kernel "$ELF" \
  </dev/null >target/dgen-c-m4.log 2>&1 || status=$?
cat target/dgen-c-m4.log
[ "$status" -eq 0 ] || { echo "C firmware exited with status $status" >&2; exit 1; }
grep '^digit ' target/dgen-c-m4.log > target/dgen-c-m4.txt || true
cargo run -q --release -p firmware-sim -- --checksums > target/firmware-sim-checksums.txt
diff target/dgen-c-m4.txt target/firmware-sim-checksums.txt
echo "C firmware on QEMU mps2-an386: $(wc -l < target/dgen-c-m4.txt) checksum lines equal firmware-sim's"
