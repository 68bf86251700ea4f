//! The in-process bus: fan-out, one target, bounded queues with counted drops and gaps,
//! malformed messages dropped and counted, coalesced wake-ups, and delivery across threads.

use super::*;
use crate::gateway::bus::Kind;
use std::sync::atomic::AtomicUsize;

fn envelope(origin: Origin, topic: &str, body: &str) -> Vec<u8> {
    Envelope {
        kind: Kind::Dispatch,
        origin,
        topic,
        body: body.as_bytes(),
    }
    .to_vec()
    .unwrap()
}

/// The body of a received message (panics on a gap or nothing).
fn body(received: Option<Received>) -> String {
    match received {
        Some(Received::Message(bytes)) => {
            let envelope = Envelope::decode(&bytes).expect("checked envelope");
            String::from_utf8(envelope.body.to_vec()).unwrap()
        }
        other => panic!("expected a message, got {other:?}"),
    }
}

fn origin(reactor: u16) -> Origin {
    Origin { node: 0, reactor }
}

#[test]
fn a_publication_to_the_others_reaches_each_once_and_not_its_publisher() {
    let mut ends = LocalBus::mesh(3, 8);
    assert_eq!(ends[1].engines(), &[origin(0), origin(1), origin(2)]);
    let message = envelope(origin(1), "general", "hello");
    ends[1].publish(Target::Others, &message).unwrap();
    assert_eq!(body(ends[0].poll()), "hello");
    assert_eq!(body(ends[2].poll()), "hello");
    for end in &mut ends {
        assert_eq!(end.poll(), None);
    }
    assert_eq!(ends[1].stats().sent, 2);
    assert_eq!(ends[0].stats().received, 1);
}

#[test]
fn a_publication_to_one_engine_reaches_only_it_in_order() {
    let mut ends = LocalBus::mesh(3, 8);
    for i in 0..5 {
        let message = envelope(origin(0), "room", &i.to_string());
        ends[0]
            .publish(Target::Engine(origin(2)), &message)
            .unwrap();
    }
    for i in 0..5 {
        assert_eq!(body(ends[2].poll()), i.to_string());
    }
    assert_eq!(ends[1].poll(), None);
    let to_self = envelope(origin(0), "room", "x");
    assert_eq!(
        ends[0].publish(Target::Engine(origin(0)), &to_self),
        Err(BusError::Unknown(origin(0)))
    );
    assert_eq!(
        ends[0].publish(Target::Engine(origin(9)), &to_self),
        Err(BusError::Unknown(origin(9)))
    );
}

#[test]
fn a_full_queue_refuses_counts_and_the_receiver_sees_the_gap_before_the_next_message() {
    let mut ends = LocalBus::mesh(2, 2);
    let send = |end: &mut LocalBusEnd, text: &str| {
        end.publish(Target::Others, &envelope(origin(0), "r", text))
    };
    send(&mut ends[0], "1").unwrap();
    send(&mut ends[0], "2").unwrap();
    assert_eq!(send(&mut ends[0], "3"), Err(BusError::Full(origin(1))));
    assert_eq!(send(&mut ends[0], "4"), Err(BusError::Full(origin(1))));
    assert_eq!(ends[0].stats().full, 2);
    assert_eq!(body(ends[1].poll()), "1");
    assert_eq!(body(ends[1].poll()), "2");
    send(&mut ends[0], "5").unwrap();
    assert_eq!(
        ends[1].poll(),
        Some(Received::Gap {
            from: origin(0),
            missed: 2
        })
    );
    assert_eq!(body(ends[1].poll()), "5");
    assert_eq!(ends[1].poll(), None);
    let stats = ends[1].stats();
    assert_eq!((stats.received, stats.lost), (3, 2));
}

#[test]
fn malformed_or_misattributed_messages_are_dropped_and_counted() {
    let mut ends = LocalBus::mesh(3, 8);
    // The publishing side refuses what is not its own valid envelope.
    assert_eq!(
        ends[0].publish(Target::Others, b"{\"op\":0}"),
        Err(BusError::Malformed(EnvelopeError::Foreign))
    );
    let forged = envelope(origin(2), "r", "forged");
    assert_eq!(
        ends[0].publish(Target::Others, &forged),
        Err(BusError::Malformed(EnvelopeError::Foreign))
    );
    // What reaches a receiver anyway (a foreign writer, a claimed origin) is dropped.
    ends[0].publish_raw(1, b"garbage").unwrap();
    ends[0].publish_raw(1, &forged).unwrap();
    ends[0]
        .publish_raw(1, &envelope(origin(1), "r", "my own"))
        .unwrap();
    let mut truncated = envelope(origin(0), "r", "cut");
    truncated.pop();
    ends[0].publish_raw(1, &truncated).unwrap();
    ends[0]
        .publish(Target::Others, &envelope(origin(0), "r", "good"))
        .unwrap();
    assert_eq!(body(ends[1].poll()), "good");
    assert_eq!(ends[1].poll(), None);
    assert_eq!(ends[1].stats().malformed, 4);
    assert_eq!(ends[1].stats().lost, 0, "a dropped message is not a gap");
}

#[test]
fn wake_ups_are_coalesced_and_a_failed_one_is_retried() {
    let mut ends = LocalBus::mesh(2, 64);
    let wakes = Arc::new(AtomicUsize::new(0));
    let accept = Arc::new(AtomicBool::new(false));
    let (w, a) = (Arc::clone(&wakes), Arc::clone(&accept));
    // Published before any waker: it waits in the queue.
    ends[0]
        .publish(Target::Others, &envelope(origin(0), "r", "early"))
        .unwrap();
    assert!(ends[1].wake_slot().set(move || {
        w.fetch_add(1, Ordering::SeqCst);
        a.load(Ordering::SeqCst)
    }));
    assert_eq!(
        wakes.load(Ordering::SeqCst),
        1,
        "setting the waker announces"
    );
    let send = |end: &mut LocalBusEnd| {
        end.publish(Target::Others, &envelope(origin(0), "r", "x"))
            .unwrap()
    };
    send(&mut ends[0]);
    assert_eq!(
        wakes.load(Ordering::SeqCst),
        2,
        "the failed wake-up is retried"
    );
    accept.store(true, Ordering::SeqCst);
    for _ in 0..10 {
        send(&mut ends[0]);
    }
    assert_eq!(
        wakes.load(Ordering::SeqCst),
        3,
        "one delivered wake-up per batch"
    );
    let mut drained = 0;
    while ends[1].poll().is_some() {
        drained += 1;
    }
    assert_eq!(drained, 12);
    send(&mut ends[0]);
    assert_eq!(wakes.load(Ordering::SeqCst), 4, "re-armed once found empty");
    assert!(!ends[1].wake_slot().set(|| true), "set once");
}

#[test]
fn messages_cross_threads_in_order_and_every_loss_is_accounted_for() {
    const COUNT: u64 = 2000;
    let mut ends = LocalBus::mesh(2, 16);
    let mut receiver = ends.pop().unwrap();
    let mut publisher = ends.pop().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let tx = std::sync::Mutex::new(tx);
    receiver
        .wake_slot()
        .set(move || tx.lock().unwrap().send(()).is_ok());
    // No retry: a refused message is lost (a publisher must not wait for a slow reactor),
    // then one last message, retried until taken, so the receiver sees every gap.
    let thread = std::thread::spawn(move || {
        for i in 0..COUNT {
            let _ = publisher.publish(Target::Others, &envelope(origin(0), "r", &i.to_string()));
        }
        let end = envelope(origin(0), "r", "end");
        while let Err(BusError::Full(_)) = publisher.publish(Target::Others, &end) {
            std::thread::yield_now();
        }
        publisher.stats()
    });
    let (mut last, mut received, mut lost) = (None::<u64>, 0u64, 0u64);
    loop {
        match receiver.poll() {
            Some(Received::Message(bytes)) => {
                let envelope = Envelope::decode(&bytes).unwrap();
                if envelope.body == b"end" {
                    break;
                }
                let n: u64 = std::str::from_utf8(envelope.body).unwrap().parse().unwrap();
                assert!(last.is_none_or(|last| n > last), "{n} after {last:?}");
                last = Some(n);
                received += 1;
            }
            Some(Received::Gap { missed, .. }) => lost += missed,
            None => rx
                .recv_timeout(std::time::Duration::from_secs(10))
                .expect("woken for the next message"),
        }
    }
    let sent = thread.join().unwrap();
    // Every attempt (the refused retries of "end" included) is either received or lost.
    assert_eq!(sent.sent, received + 1);
    assert_eq!(
        lost, sent.full,
        "each refusal is one lost message, reported"
    );
    assert_eq!(receiver.stats().lost, lost);
}
