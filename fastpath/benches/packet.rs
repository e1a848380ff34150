//! Nanoseconds per packet for the packet library's fast-path operations.
//!
//! Run with `make bench` (`cargo bench -p baton-fastpath`). Frames are the
//! real-stack fixtures under `tests/fixtures/`; each is rewritten in place,
//! as a worker rewrites an mbuf, so the figures include parsing, option
//! scanning and the incremental checksum updates, with the frame in L1.

use std::hint::black_box;
use std::net::Ipv4Addr;
use std::time::Duration;

use baton_fastpath::packet::{classify, SeqNum, Translation, TsOffset};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};

const SYN: &[u8] = include_bytes!("../tests/fixtures/syn.bin");
const DATA_C2S: &[u8] = include_bytes!("../tests/fixtures/data_c2s.bin");
const DATA_S2C: &[u8] = include_bytes!("../tests/fixtures/data_s2c.bin");
const ACK_SACK: &[u8] = include_bytes!("../tests/fixtures/ack_sack.bin");

fn translation() -> Translation {
    Translation {
        seq_delta: SeqNum::new(0x925d_f2b1) - SeqNum::new(0x1234_5678),
        ts_offset: TsOffset::new(0x0bad_cafe),
        client_visible_addr: Ipv4Addr::new(198, 18, 0, 1),
        target_kernel_addr: Ipv4Addr::new(198, 18, 1, 20),
        wscale_kernel: 7,
        wscale_origin: 10,
    }
}

fn benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("packet");
    g.throughput(Throughput::Elements(1));
    g.warm_up_time(Duration::from_secs(1));
    g.measurement_time(Duration::from_secs(3));

    g.bench_function("parse_classify/syn", |b| {
        b.iter(|| classify(black_box(SYN)))
    });
    g.bench_function("parse_classify/data", |b| {
        b.iter(|| classify(black_box(DATA_C2S)))
    });

    let t = translation();
    for (name, fixture) in [("ack_ts", DATA_C2S), ("ack_ts_sack", ACK_SACK)] {
        let mut frame = fixture.to_vec();
        g.bench_function(format!("client_to_target/{name}"), |b| {
            b.iter(|| t.client_to_target(black_box(&mut frame)))
        });
    }
    let mut frame = DATA_S2C.to_vec();
    g.bench_function("target_to_client/data_ts", |b| {
        b.iter(|| t.target_to_client(black_box(&mut frame)))
    });

    // What a worker does per packet of a handed-off flow: classify for the
    // flow lookup, then translate.
    let mut frame = ACK_SACK.to_vec();
    g.bench_function("classify_then_client_to_target/ack_ts_sack", |b| {
        b.iter(|| {
            let class = classify(black_box(&frame));
            black_box(class.ok());
            t.client_to_target(black_box(&mut frame))
        })
    });
    g.finish();
}

criterion_group!(packet, benches);
criterion_main!(packet);
