//! Throughput of the int8 generator on the shipped model.
//!
//! `cargo bench -p generator-core --bench generate`

use std::hint::black_box;
use std::num::NonZeroUsize;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use generator_core::{Generator, Image, MAX_ARENA_BYTES, default_model, threads};

fn bench(c: &mut Criterion) {
    let model = default_model().expect("default model loads");
    let macs = model.macs_per_digit();
    let mut arena = [0u8; MAX_ARENA_BYTES];
    let mut g = Generator::new(&model, &mut arena).unwrap();

    let mut group = c.benchmark_group("generate");
    group.measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(1));
    let mut img: Image = [0; 784];
    let mut seed = 0u32;
    group.bench_function("one_digit", |b| {
        b.iter(|| {
            seed = seed.wrapping_add(1);
            g.generate(black_box(7), seed, &mut img).unwrap();
            black_box(&img);
        })
    });

    let labels: Vec<u8> = (0..100).map(|i| (i % 10) as u8).collect();
    let mut out = vec![[0u8; 784]; 100];
    group.throughput(Throughput::Elements(100));
    group.bench_function("batch_100", |b| {
        b.iter(|| {
            g.generate_batch(black_box(&labels), 42, &mut out).unwrap();
            black_box(&out);
        })
    });
    group.finish();

    // Across threads (feature `std`): 1,000 digits on one thread and on every core
    // (`DGEN_THREADS` or the host's parallelism).
    let mut group = c.benchmark_group("threads");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(1000));
    let labels: Vec<u8> = (0..1000).map(|i| (i % 10) as u8).collect();
    let mut out = vec![[0u8; 784]; 1000];
    let all = threads::default_threads().expect("DGEN_THREADS");
    for (name, n) in [
        ("batch_1000_threads_1", NonZeroUsize::MIN),
        ("batch_1000_threads_all", all),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                threads::generate_batch_threads(&model, black_box(&labels), 42, &mut out, n)
                    .unwrap();
                black_box(&out);
            })
        });
    }
    group.finish();
    println!("(threads_all: {all} threads)");
    println!("({macs} MACs per digit: digits/s x {macs} = MAC/s)");
}

criterion_group!(benches, bench);
criterion_main!(benches);
