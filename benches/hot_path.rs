//! Hot-path microbenchmarks: encode one event, deliver one event to N viewers' queues, parse a
//! client frame. `cargo bench --bench hot_path` shows a regression in one command.

use std::sync::Arc;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use livehub::bus::{Event, RoomSink};
use livehub::config::Config;
use livehub::outbox::{ConnCtl, Outbox};
use livehub::protocol::{Comment, Id, Role, ServerMsg, You, parse_client};
use livehub::room::{Room, RoomSettings};
use tokio_util::sync::CancellationToken;

fn comment(seq: u64) -> ServerMsg {
    ServerMsg::Comment(Comment {
        seq,
        id: Id::new(format!("c{seq}")).unwrap(),
        user: Id::new("viewer-123").unwrap(),
        name: "Ana from Berlin".into(),
        text: "love this scarf, does it come in blue? ordering two for my sisters".into(),
        ts: 1_795_000_000_000,
    })
}

fn encode(c: &mut Criterion) {
    let msg = comment(42);
    c.bench_function("encode_comment_event", |b| {
        b.iter(|| std::hint::black_box(msg.to_json().unwrap()))
    });
}

fn parse(c: &mut Criterion) {
    let frames = [
        (
            "comment",
            r#"{"type":"comment","text":"love this scarf, does it come in blue?","request_id":"k17"}"#,
        ),
        (
            "reserve",
            r#"{"type":"reserve","request_id":"r-flash-123","deal":"flash","qty":1}"#,
        ),
        (
            "invalid",
            r#"{"type":"reserve","request_id":"r1","qty":"x"}"#,
        ),
    ];
    let mut g = c.benchmark_group("parse_client_frame");
    for (name, frame) in frames {
        g.bench_with_input(BenchmarkId::from_parameter(name), frame, |b, f| {
            b.iter(|| std::hint::black_box(parse_client(f)))
        });
    }
    g.finish();
}

fn fan_out(c: &mut Criterion) {
    let cfg = Config::defaults();
    let mut g = c.benchmark_group("publish_one_event_to_n_viewers");
    for n in [100usize, 1_000, 10_000] {
        let room = Room::new(
            Id::new("bench").unwrap(),
            RoomSettings::from_config(&cfg),
            livehub::funnel::RoomTally::new(cfg.funnel.engaged_ms),
            "bench".into(),
        );
        let mut seq = 0;
        let mut receivers = Vec::with_capacity(n);
        for i in 0..n {
            let ctl = Arc::new(ConnCtl::new(i as u64, CancellationToken::new()));
            let (outbox, rx) = Outbox::new(1024, livehub::outbox::Thinning::NEVER, ctl);
            let you = You {
                user: Id::new(format!("v{i}")).unwrap(),
                name: "v".into(),
                role: Role::Viewer,
            };
            room.join(outbox, you, livehub::funnel::Channel::Paid, None, None)
                .unwrap();
            receivers.push(rx);
        }
        g.throughput(Throughput::Elements(n as u64));
        g.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| {
                // What every node does with an event the bus delivers: apply, encode once, fan out.
                seq += 1;
                room.deliver(
                    seq,
                    Event::Announcement {
                        text: "Half the lamps are gone!".into(),
                    },
                );
                // Drain, as the writers would, so queues never fill.
                let mut take = livehub::outbox::Take::default();
                for rx in receivers.iter_mut() {
                    rx.try_recv(&mut take, usize::MAX);
                    take.drain().for_each(drop);
                }
            })
        });
    }
    g.finish();
}

/// What the funnel adds to the hot path: a join and a tap recorded in the room's tally (O(1),
/// no Redis), and one flush of a thousand users' facts taken out for the store.
fn funnel_tally(c: &mut Criterion) {
    use livehub::funnel::{Channel, RoomTally};
    let mut g = c.benchmark_group("funnel_tally");
    let users: Vec<Id> = (0..1_000)
        .map(|i| Id::new(format!("u{i}")).unwrap())
        .collect();
    let deal = Id::new("d1").unwrap();
    g.bench_function("join_tap_leave", |b| {
        let t = RoomTally::new(30_000);
        let mut i = 0usize;
        b.iter(|| {
            let u = &users[i % users.len()];
            t.joined(u, Channel::Paid, std::slice::from_ref(&deal), 1, i as u64);
            t.tapped(u, &deal, i as u64);
            t.left(u, i as u64 + 1);
            i += 1;
            if i.is_multiple_of(4096) {
                std::hint::black_box(t.take(0, i as u64));
            }
        })
    });
    g.finish();
}

criterion_group!(benches, encode, parse, fan_out, funnel_tally);
criterion_main!(benches);
