"""Tests of the aigcmn package: inputs, errors, seeds, exact pixels, the GIL and pi."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import threading
import time
import zlib
from pathlib import Path

import numpy as np
import pytest

import aigcmn
from aigcmn import AiGcMn, to_signed_unit
from aigcmn import pi as pi_example

REPO = Path(__file__).resolve().parents[2]
SHIPPED_MODEL = REPO / "generator-core" / "models" / "default.dgen"


def fnv1a32(data: bytes) -> int:
    """FNV-1a, 32-bit, written here independently of the Rust one (a test oracle)."""
    h = 0x811C9DC5
    for b in data:
        h = ((h ^ b) * 0x01000193) & 0xFFFFFFFF
    return h


def test_fnv1a_reference_vectors():
    assert fnv1a32(b"") == 0x811C9DC5
    assert fnv1a32(b"a") == 0xE40C292C
    assert fnv1a32(b"foobar") == 0xBF9CF968


def firmware_sim_checksums(*args: str) -> str:
    """Output of `firmware-sim --checksums ARGS`: the binary named by $FIRMWARE_SIM, or
    `cargo run` in this repository."""
    exe = os.environ.get("FIRMWARE_SIM")
    if exe:
        cmd = [exe, "--checksums", *args]
    elif shutil.which("cargo") and (REPO / "firmware-sim").is_dir():
        cmd = ["cargo", "run", "-q", "-p", "firmware-sim", "--", "--checksums", *args]
    else:
        pytest.skip("firmware-sim unavailable: set FIRMWARE_SIM or run from the repository")
    return subprocess.run(cmd, cwd=REPO, check=True, capture_output=True, text=True).stdout


@pytest.mark.parametrize(
    "digits, seed, count",
    [("0123456789", 42, 1), ("3141592653", 7, 2), ("9", 4294967295, 3)],
)
def test_pixels_are_the_cores(digits, seed, count):
    expected = firmware_sim_checksums(digits, "--seed", str(seed), "--count", str(count))
    labels = digits * count
    gen = AiGcMn(seed=seed)
    u8 = gen.images_u8(labels)
    lines = [
        f"digit {d} seed {(seed + k) % 2**32} fnv1a {fnv1a32(u8[k].tobytes()):#010x}"
        for k, d in enumerate(labels)
    ]
    assert "\n".join(lines) + "\n" == expected

    floats = gen.generator(labels)
    # The documented formula, bit for bit, and its exact inverse.
    assert np.array_equal(floats[:, 0], to_signed_unit(u8))
    assert np.array_equal(np.rint((floats[:, 0] + 1.0) * 127.5).astype(np.uint8), u8)


def test_formula_end_points():
    p = np.array([0, 1, 127, 128, 254, 255], dtype=np.uint8)
    x = to_signed_unit(p)
    assert x[0] == -1.0 and x[-1] == 1.0
    assert x.dtype == np.float32
    assert np.array_equal(x, np.float32(p) / np.float32(127.5) - np.float32(1))


@pytest.mark.parametrize(
    "labels",
    [
        [3, 1, 4, 1, 5],
        (3, 1, 4, 1, 5),
        "31415",
        np.array([3, 1, 4, 1, 5], dtype=np.int64),
        np.array([3, 1, 4, 1, 5], dtype=np.uint8),
        np.array([3, 1, 4, 1, 5], dtype=np.int32),
        [np.int16(3), 1, 4, 1, 5],
    ],
    ids=["list", "tuple", "str", "int64", "uint8", "int32", "numpy-scalars"],
)
def test_every_input_kind_gives_the_same_batch(labels):
    out = AiGcMn(seed=5).generator(labels)
    assert isinstance(out, np.ndarray)
    assert out.shape == (5, 1, 28, 28) and out.dtype == np.float32
    assert out.min() >= -1.0 and out.max() <= 1.0
    assert np.array_equal(out, AiGcMn(seed=5).generator([3, 1, 4, 1, 5]))
    out[0, 0, 0, 0] = 0.5  # writable, like a fresh tensor


@pytest.mark.parametrize("empty", [[], (), "", np.array([], dtype=np.int64)])
def test_empty_input_gives_an_empty_batch(empty):
    out = AiGcMn(seed=1).generator(empty)
    assert out.shape == (0, 1, 28, 28) and out.dtype == np.float32


@pytest.mark.parametrize(
    "labels, needle",
    [
        ([1, 10, 2], "label 10 at index 1"),
        ([-1], "label -1 at index 0"),
        ("12x4", "'x' at index 2"),
        ([1, 2.0], "2.0"),
        ([True], "True"),
        (np.array([1.0, 2.0]), "float64"),
        (np.array([True]), "bool"),
        (np.array([[1, 2], [3, 4]]), "(2, 2)"),
        (np.array(3), "()"),
        (np.array([0, 9, 12], dtype=np.int8), "label 12 at index 2"),
        (np.array([0, 300], dtype=np.int64), "label 300 at index 1"),
        ([[1, 2]], "[1, 2]"),
    ],
)
def test_bad_labels_raise_value_error_naming_the_value(labels, needle):
    with pytest.raises(ValueError) as err:
        AiGcMn(seed=1).generator(labels)
    assert needle in str(err.value)


def test_other_types_raise_type_error():
    with pytest.raises(TypeError):
        AiGcMn(seed=1).generator(3)


def test_native_layer_rejects_bad_labels_itself():
    engine = AiGcMn(seed=1)._engine
    with pytest.raises(ValueError, match="label 11 at index 1"):
        engine.generate_u8(bytes([1, 11]), 0, 1)
    with pytest.raises(ValueError, match="threads"):
        engine.generate_u8(bytes([1, 2]), 0, 0)


def test_seed_schedule_and_fresh_noise():
    seeded = AiGcMn(seed=100)
    a, b = seeded.generator("77"), seeded.generator("77")
    assert np.array_equal(a, b), "a base seed makes every call reproducible"
    # Image i uses seed base + i: image 1 of base 100 is image 0 of base 101.
    assert np.array_equal(a[1], AiGcMn(seed=101).generator("7")[0])
    assert not np.array_equal(a[0], a[1])

    fresh = AiGcMn()
    c, d = fresh.generator("7777"), fresh.generator("7777")
    assert not np.array_equal(c, d), "seed=None draws fresh noise on every call"


@pytest.mark.parametrize("seed", [-1, 2**32, 1.5, "3", True])
def test_bad_seed(seed):
    with pytest.raises(ValueError):
        AiGcMn(seed=seed)


def test_model_path(tmp_path):
    if not SHIPPED_MODEL.is_file():
        pytest.skip("run from the repository to find the shipped model file")
    own = AiGcMn(model=SHIPPED_MODEL, seed=3).generator("0123")
    assert np.array_equal(own, AiGcMn(seed=3).generator("0123"))
    assert np.array_equal(own, AiGcMn(model=str(SHIPPED_MODEL), seed=3).generator("0123"))

    data = bytearray(SHIPPED_MODEL.read_bytes())
    data[len(data) // 2] ^= 0xFF
    broken = tmp_path / "broken.dgen"
    broken.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="broken.dgen"):
        AiGcMn(model=broken)
    junk = tmp_path / "junk.dgen"
    junk.write_bytes(b"not a model")
    with pytest.raises(ValueError, match="magic"):
        AiGcMn(model=junk)
    with pytest.raises(OSError):
        AiGcMn(model=tmp_path / "missing.dgen")


def test_gil_is_released_while_generating():
    gen = AiGcMn(seed=1, threads=1)  # one thread: a long enough call to sample
    labels = np.arange(2000) % 10
    started = threading.Event()
    window = []

    def work():
        started.set()
        t0 = time.perf_counter()
        gen.generator(labels)
        window.extend([t0, time.perf_counter()])

    worker = threading.Thread(target=work)
    worker.start()
    started.wait()
    ticks = []
    while worker.is_alive():
        ticks.append(time.perf_counter())
        time.sleep(0.001)  # needs the GIL back to continue
    worker.join()
    t0, t1 = window
    middle = [t for t in ticks if t0 + 0.25 * (t1 - t0) < t < t0 + 0.75 * (t1 - t0)]
    # With the GIL held through the Rust call this thread could not run mid-call at all.
    assert len(middle) >= 10, (len(middle), t1 - t0)


@pytest.mark.parametrize("n", [1, 13, 10_000])
def test_bytes_do_not_depend_on_the_thread_count(n):
    labels = (np.arange(n) * 7 + np.arange(n) // 3) % 10
    seed = 2**32 - 5_000  # the large batch wraps the seed
    floats = [AiGcMn(seed=seed, threads=t).generator(labels) for t in (1, 2, 3)]
    raw = [AiGcMn(seed=seed, threads=t).images_u8(labels) for t in (1, 2, 3)]
    for f, u in zip(floats, raw):
        assert f.shape == (n, 1, 28, 28) and u.shape == (n, 28, 28)
        assert f.tobytes() == floats[0].tobytes()
        assert u.tobytes() == raw[0].tobytes()
    assert np.array_equal(floats[0][:, 0], to_signed_unit(raw[0]))


@pytest.mark.parametrize("threads", [0, -1, 1025, 2**70, True, 1.5, "2"])
def test_bad_thread_count(threads):
    with pytest.raises(ValueError, match="threads"):
        AiGcMn(threads=threads)


def test_thread_count_from_the_environment(monkeypatch):
    monkeypatch.delenv("DGEN_THREADS", raising=False)
    assert AiGcMn().threads >= 1  # every core
    monkeypatch.setenv("DGEN_THREADS", "3")
    assert AiGcMn().threads == 3
    assert AiGcMn(threads=2).threads == 2, "the argument wins"
    assert "threads=3" in repr(AiGcMn(seed=1))
    for bad in ["0", "", "all", "-2", "1.5", "2000"]:
        monkeypatch.setenv("DGEN_THREADS", bad)
        with pytest.raises(ValueError) as err:
            AiGcMn()
        assert f'DGEN_THREADS="{bad}"' in str(err.value), str(err.value)
        assert AiGcMn(threads=1).threads == 1, "not read when the argument is given"


def test_torch_tensor_in_tensor_out():
    torch = pytest.importorskip("torch")
    gen = AiGcMn(seed=9)
    out = gen.generator(torch.tensor([3, 1, 4], dtype=torch.int64))
    assert isinstance(out, torch.Tensor)
    assert out.dtype == torch.float32 and tuple(out.shape) == (3, 1, 28, 28)
    assert np.array_equal(out.numpy(), gen.generator([3, 1, 4]))
    assert tuple(gen.generator(torch.tensor([], dtype=torch.int64)).shape) == (0, 1, 28, 28)
    with pytest.raises(ValueError, match="float"):
        gen.generator(torch.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="label 12"):
        gen.generator(torch.tensor([1, 12]))
    with pytest.raises(ValueError, match=r"\(1, 2\)"):
        gen.generator(torch.tensor([[1, 2]]))


def read_png_gray(data: bytes) -> np.ndarray:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, size = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(kind + body)
        if kind == b"IHDR":
            size = struct.unpack(">II", body[:8])
            assert body[8:] == bytes([8, 0, 0, 0, 0])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height = size
    raw = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(height, width + 1)
    assert not raw[:, 0].any(), "filter type 0 on every row"
    return raw[:, 1:]


def test_pi_example_writes_the_grid(tmp_path):
    out = tmp_path / "pi.png"
    assert pi_example.main(["--out", str(out), "--seed", "42"]) == 0
    img = read_png_gray(out.read_bytes())
    assert img.shape == (8 * 30 + 2, 8 * 30 + 2)
    u8 = AiGcMn(seed=42).images_u8(pi_example.PI_64)
    for k in range(64):
        r, c = divmod(k, 8)
        y, x = 2 + 30 * r, 2 + 30 * c
        assert np.array_equal(img[y : y + 28, x : x + 28], u8[k])
    assert not img[:2].any() and not img[:, :2].any()
    assert [p.name for p in tmp_path.iterdir()] == ["pi.png"], "no temp file left behind"


def test_package_surface():
    assert aigcmn.IMAGE_SIDE == 28
    assert "AiGcMn" in aigcmn.__all__
    assert "seed=7" in repr(AiGcMn(seed=7))
