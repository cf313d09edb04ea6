//! The outbox's unit tests: queueing, overflow, direct writes on real loopback sockets, pings.

use super::*;

fn f(s: &'static str) -> Frame {
    Bytes::from_static(s.as_bytes())
}

/// A connected loopback pair: (client, server).
async fn socket_pair() -> (TcpStream, TcpStream) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let client = TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (server, _) = listener.accept().await.unwrap();
    (client, server)
}

#[test]
fn overflow_drops_the_queue_and_marks_too_slow() {
    let c = ConnHandle::new(1, 10, None);
    assert_eq!(c.push(&f("12345")), Pushed::Queued);
    assert_eq!(c.push(&f("12345")), Pushed::Queued);
    assert_eq!(c.push(&f("1")), Pushed::Refused);
    let d = c.drain();
    assert!(d.frames.is_empty());
    assert_eq!(d.close, Some(CloseRequest::TooSlow));
    assert_eq!(c.push(&f("1")), Pushed::Refused);
    // Closing frames still go out.
    assert_eq!(c.push_control(&f("bye")), Pushed::Queued);
}

#[test]
fn a_partly_written_frame_survives_an_overflow() {
    let c = ConnHandle::new(1, 10, None);
    c.push(&f("abcdef"));
    c.lock().partial_head = true;
    c.push(&f("1234"));
    c.push(&f("x"));
    let d = c.drain();
    assert_eq!(d.frames, VecDeque::from([f("abcdef")]));
    assert_eq!(d.close, Some(CloseRequest::TooSlow));
}

#[test]
fn taking_the_batch_resets_the_byte_count_and_marks_writing() {
    let c = ConnHandle::new(1, 10, None);
    assert_eq!(c.push(&f("1234567890")), Pushed::Queued);
    let mut batch = VecDeque::new();
    c.take_batch(&mut batch);
    assert_eq!(batch.len(), 1);
    assert!(c.lock().writing);
    assert_eq!(c.push(&f("1234567890")), Pushed::Queued);
    batch.clear();
    c.take_batch(&mut batch);
    batch.clear();
    c.take_batch(&mut batch);
    assert!(!c.lock().writing, "an empty take ends the task's turn");
}

#[test]
fn a_direct_write_reads_one_cache_line_of_the_handle() {
    use std::mem::{align_of, offset_of, size_of};
    let c = ConnHandle::new(1, 10, None);
    let base = &c as *const ConnHandle as usize;
    // Where the mutex keeps the queue (after its own lock word and poison flag).
    let queue = &*c.lock() as *const Queue as usize - base;
    let hot_end = queue + offset_of!(Queue, started) + size_of::<Option<Stamp>>();
    let socket = size_of::<Option<TcpStream>>();
    assert_eq!(align_of::<ConnHandle>(), 64);
    assert_eq!(offset_of!(ConnHandle, socket), 0);
    assert!(
        hot_end - socket <= 32,
        "lock and hot fields: {}",
        hot_end - socket
    );
    // The socket is 32 bytes in release builds (mio adds a selector id in debug builds).
    if !cfg!(debug_assertions) {
        assert_eq!(socket, 32);
    }
}

#[test]
fn first_close_wins() {
    let c = ConnHandle::new(1, 10, None);
    c.close(CloseRequest::CloseOnly);
    c.close(CloseRequest::TooSlow);
    assert_eq!(c.drain().close, Some(CloseRequest::CloseOnly));
}

#[tokio::test]
async fn a_push_wakes_the_task_once() {
    let c = ConnHandle::new(1, 100, None);
    c.push(&f("a"));
    c.push(&f("b"));
    tokio::time::timeout(std::time::Duration::from_millis(100), c.woken())
        .await
        .unwrap();
    assert_eq!(c.drain().frames.len(), 2);
}

#[tokio::test]
async fn pushes_go_straight_to_an_idle_socket() {
    let (client, server) = socket_pair().await;
    let c = ConnHandle::new(1, 1 << 20, Some(server));
    assert_eq!(c.push(&f("hello")), Pushed::Written);
    // While the task owns the write side, frames queue behind it.
    c.lock().writing = true;
    assert_eq!(c.push(&f("later")), Pushed::Queued);
    let mut buf = [0u8; 5];
    client.readable().await.unwrap();
    assert_eq!(client.try_read(&mut buf).unwrap(), 5);
    assert_eq!(&buf, b"hello");
}

#[tokio::test]
async fn a_queued_fan_out_leaves_the_writes_to_the_task_in_order() {
    let (_client, server) = socket_pair().await;
    let c = ConnHandle::new(1, 100, Some(server));
    let beat = Beat::default();
    assert_eq!(
        FanOut::Queued.push(&c, &f("one"), &beat, Stamp::now()),
        Pushed::Queued
    );
    // Behind a queued frame even an immediate push waits its turn.
    assert_eq!(
        FanOut::Immediate.push(&c, &f("two"), &beat, Stamp::now()),
        Pushed::Queued
    );
    tokio::time::timeout(std::time::Duration::from_millis(100), c.woken())
        .await
        .unwrap();
    assert_eq!(c.drain().frames, VecDeque::from([f("one"), f("two")]));
    assert_eq!(
        FanOut::Immediate.push(&c, &f("three"), &beat, Stamp::now()),
        Pushed::Written
    );
}

#[test]
fn a_short_write_queues_the_rest_in_order() {
    let (ping, frame) = (f("PING"), f("frame"));
    let mut q = Queue::default();
    queue_unwritten(&mut q, &[&ping, &frame], 2);
    assert_eq!(q.frames, VecDeque::from([f("NG"), f("frame")]));
    assert_eq!((q.bytes, q.partial_head), (7, true));
    let mut q = Queue::default();
    queue_unwritten(&mut q, &[&ping, &frame], 4);
    assert_eq!(q.frames, VecDeque::from([f("frame")]));
    assert_eq!((q.bytes, q.partial_head), (5, false));
    let mut q = Queue::default();
    queue_unwritten(&mut q, &[&ping, &frame], 6);
    assert_eq!(q.frames, VecDeque::from([f("ame")]));
    assert_eq!((q.bytes, q.partial_head), (3, true));
}

#[tokio::test]
async fn the_owed_ping_rides_along_once_per_beat() {
    let (client, server) = socket_pair().await;
    let c = ConnHandle::new(1, 1 << 20, Some(server));
    let beat = Beat::default();
    beat.advance(f("P1"));
    // Not welcomed yet: never owed a ping, by a broadcast or by the sweep.
    assert_eq!(
        FanOut::Immediate.push(&c, &f("a"), &beat, Stamp::now()),
        Pushed::Written
    );
    c.ping_if_due(&beat);
    c.start_pings(&beat);
    assert_eq!(
        FanOut::Immediate.push(&c, &f("b"), &beat, Stamp::now()),
        Pushed::Written
    );
    beat.advance(f("P2"));
    assert_eq!(
        FanOut::Immediate.push(&c, &f("c"), &beat, Stamp::now()),
        Pushed::Written
    );
    assert_eq!(
        FanOut::Immediate.push(&c, &f("d"), &beat, Stamp::now()),
        Pushed::Written
    );
    // The sweep finds nothing owed in this beat; in the next it sends the ping alone.
    c.ping_if_due(&beat);
    beat.advance(f("P3"));
    c.ping_if_due(&beat);
    c.ping_if_due(&beat);
    let mut got = Vec::new();
    while got.len() < 8 {
        client.readable().await.unwrap();
        let mut buf = [0u8; 64];
        if let Ok(n) = client.try_read(&mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
    }
    assert_eq!(got, b"abP2cdP3");
}

#[test]
fn a_queued_fan_out_queues_the_owed_ping_first() {
    let c = ConnHandle::new(1, 100, None);
    let beat = Beat::default();
    c.start_pings(&beat);
    beat.advance(f("P"));
    FanOut::Queued.push(&c, &f("one"), &beat, Stamp::now());
    FanOut::Queued.push(&c, &f("two"), &beat, Stamp::now());
    assert_eq!(
        c.drain().frames,
        VecDeque::from([f("P"), f("one"), f("two")])
    );
    // A closing connection is owed nothing.
    beat.advance(f("Q"));
    c.close(CloseRequest::CloseOnly);
    assert_eq!(c.ping_if_due(&beat), Pushed::Refused);
}

#[tokio::test]
async fn write_frames_handles_many_frames_and_short_writes() {
    let (mut a, mut b) = tokio::io::duplex(7);
    let mut frames: VecDeque<Frame> = (0..100).map(|i| Bytes::from(format!("<{i}>"))).collect();
    let expected: String = (0..100).map(|i| format!("<{i}>")).collect();
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut b, &mut got)
            .await
            .unwrap();
        got
    });
    write_frames(&mut a, &mut frames).await.unwrap();
    drop(a);
    assert!(frames.is_empty());
    assert_eq!(String::from_utf8(reader.await.unwrap()).unwrap(), expected);
}
